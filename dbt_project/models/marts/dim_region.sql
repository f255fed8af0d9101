with regions as (
    select * from {{ ref('regions') }}
),

final as (
    select
        region_code,
        region_name_en,
        sort_order
    from regions
)

select * from final
