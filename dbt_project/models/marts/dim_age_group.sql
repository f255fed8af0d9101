with age_groups as (
    select * from {{ ref('age_groups') }}
),

final as (
    select
        age_group_code,
        label_en,
        min_age,
        max_age,
        sort_order
    from age_groups
)

select * from final
