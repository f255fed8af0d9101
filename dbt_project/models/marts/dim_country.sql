with countries as (
    select * from {{ ref('countries') }}
),

regions as (
    select * from {{ ref('regions') }}
),

final as (
    select
        countries.country_code,
        countries.country_name,
        countries.region_code,
        regions.region_name_en,
        countries.is_un_member
    from countries
    left join regions
        on countries.region_code = regions.region_code
)

select * from final
