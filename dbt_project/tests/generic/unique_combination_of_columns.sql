{#- Composite-key uniqueness without dbt packages: fails on every combination that occurs
    more than once. Pair it with not_null on each column. -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

with grouped as (
    select
        {{ combination_of_columns | join(', ') }},
        count(*) as occurrences
    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}
),

final as (
    select *
    from grouped
    where occurrences > 1
)

select * from final

{% endtest %}
