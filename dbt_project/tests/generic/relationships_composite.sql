{#- Multi-column foreign key without dbt packages: every non-null combination of
    `columns` in the model must exist as the combination `to_columns` of `to`. -#}
{% test relationships_composite(model, columns, to, to_columns) %}

with child as (
    select distinct
        {%- for column in columns %}
        {{ column }} as key_{{ loop.index }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ model }}
    where
        {%- for column in columns %}
        {{ column }} is not null{{ " and" if not loop.last }}
        {%- endfor %}
),

parent as (
    select distinct
        {%- for column in to_columns %}
        {{ column }} as key_{{ loop.index }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ to }}
),

final as (
    select child.*
    from child
    left join parent
        on
        {%- for column in columns %}
        child.key_{{ loop.index }} = parent.key_{{ loop.index }}{{ " and" if not loop.last }}
        {%- endfor %}
    where parent.key_1 is null
)

select * from final

{% endtest %}
