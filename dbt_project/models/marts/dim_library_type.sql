with library_types as (
    select * from {{ ref('library_types') }}
),

final as (
    select
        library_type_code,
        label_en,
        label_zh,
        sort_order
    from library_types
)

select * from final
