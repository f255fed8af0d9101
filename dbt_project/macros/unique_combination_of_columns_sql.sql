{#- The query of the unique_combination_of_columns generic test (tests/generic), and of the
    unique test on DuckDB (macros/test_unique.sql): one row per combination of
    `combination_of_columns` that occurs more than once in `model`, with its number of
    occurrences. With skip_nulls, rows where any of the columns is null are left out (as
    dbt's unique test does). -#}
{% macro unique_combination_of_columns_sql(model, combination_of_columns, skip_nulls=false) -%}
    {{ return(adapter.dispatch('unique_combination_of_columns_sql')(model, combination_of_columns, skip_nulls)) }}
{%- endmacro %}

{#- The common tail: the combinations of the rows passing `row_filter` grouped, the
    repeated ones kept (CTEs `grouped` and `final`, after a leading `with` or a comma). -#}
{% macro repeated_combinations_ctes(model, combination_of_columns, row_filter) %}
grouped as (
    select
        {{ combination_of_columns | join(', ') }},
        count(*) as occurrences
    from {{ model }}
    where {{ row_filter }}
    group by {{ combination_of_columns | join(', ') }}
),

final as (
    select *
    from grouped
    where occurrences > 1
)
{% endmacro %}

{% macro combination_not_null_filter(combination_of_columns, skip_nulls) -%}
    {%- if skip_nulls -%}
    {%- for column in combination_of_columns %}{{ column }} is not null{{ " and " if not loop.last }}{% endfor -%}
    {%- else -%}
    1 = 1
    {%- endif -%}
{%- endmacro %}

{% macro default__unique_combination_of_columns_sql(model, combination_of_columns, skip_nulls) %}

with {{ repeated_combinations_ctes(model, combination_of_columns, combination_not_null_filter(combination_of_columns, skip_nulls)) }}

select * from final

{% endmacro %}

{#- DuckDB: the same result, found in two steps. Grouping tens of millions of wide keys
    (fct_vote_choices: a 32-character vote key and two codes) was the costliest query of
    the build, so each combination is first reduced to a 64-bit hash and the hashes that
    occur more than once are found by sorting them (cheaper than grouping 50 million
    distinct hashes, and it spills gracefully); then the rows with those hashes - every
    repeated combination, plus any two distinct ones whose hashes collide - are grouped
    exactly. Without repeats, that second grouping has no row to group. -#}
{% macro duckdb__unique_combination_of_columns_sql(model, combination_of_columns, skip_nulls) %}
{%- set combination = combination_of_columns | join(', ') %}
{%- set not_null = combination_not_null_filter(combination_of_columns, skip_nulls) %}

with hashed as (
    select hash({{ combination }}) as combination_hash
    from {{ model }}
    where {{ not_null }}
),

repeated_hashes as (
    select combination_hash
    from (
        select
            combination_hash,
            lead(combination_hash) over (order by combination_hash) as next_hash
        from hashed
    ) as sorted_hashes
    where combination_hash = next_hash
),

{{ repeated_combinations_ctes(model, combination_of_columns,
       not_null ~ ' and hash(' ~ combination ~ ') in (select combination_hash from repeated_hashes)') }}

select * from final

{% endmacro %}
