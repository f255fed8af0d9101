with languages as (
    select * from {{ ref('languages') }}
),

final as (
    select
        language_code,
        language_name_en,
        language_name_native,
        sort_order
    from languages
)

select * from final
