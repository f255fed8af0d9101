with experience_bands as (
    select * from {{ ref('experience_bands') }}
),

final as (
    select
        experience_band_code,
        label_en,
        min_years,
        max_years,
        sort_order
    from experience_bands
)

select * from final
