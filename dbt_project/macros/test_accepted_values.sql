{#-
    DuckDB version of dbt's built-in accepted_values test (found first: dispatch searches
    the root project before dbt's own). Same result as dbt's default__test_accepted_values -
    one row per value outside `values`, with its number of records - but the values are
    matched with a join: the default `not in (...)` is pushed below the grouping by
    DuckDB's optimiser and evaluated as one comparison per accepted value on every row,
    seconds on the 53 million rows of fct_vote_choices (a materialised CTE does not stop
    it). Nulls are not checked (as with `not in`): not_null tests do that. The values are
    typed as written (quote: false for numbers or booleans): unlike a literal in `not in`,
    a quoted value is not cast to the column's type, so a mismatch fails to bind.
-#}
{% macro duckdb__test_accepted_values(model, column_name, values, quote=True) %}

with all_values as (
    select
        {{ column_name }} as value_field,
        count(*) as n_records
    from {{ model }}
    group by {{ column_name }}
),

accepted_values as (
    select value_field
    from (values
        {%- for value in values %}
        ({% if quote %}'{{ value }}'{% else %}{{ value }}{% endif %}){{ "," if not loop.last }}
        {%- endfor %}
    ) as accepted (value_field)
)

select all_values.*
from all_values
left join accepted_values
    on all_values.value_field = accepted_values.value_field
where all_values.value_field is not null
    and accepted_values.value_field is null

{% endmacro %}
