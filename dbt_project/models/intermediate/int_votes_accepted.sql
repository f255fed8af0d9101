{{ config(materialized="table") }}

-- One row per vote: the accepted version of each response (duplicates and superseded
-- versions were resolved by ingestion and are left out here), with the attributes
-- derived from reference data: region and UN membership of the country, experience band.
with votes as (
    select *
    from {{ ref('stg_raw__votes') }}
    where outcome = 'accepted'
),

countries as (
    select
        country_code,
        region_code,
        is_un_member
    from {{ ref('countries') }}
),

experience_bands as (
    select
        experience_band_code,
        min_years,
        max_years
    from {{ ref('experience_bands') }}
),

final as (
    select
        -- pseudonymous key of the vote: a hash of the platform's response id
        {{ dbt.hash('votes.response_id') }} as vote_key,
        votes.response_id,
        votes.respondent_key,
        votes.submitted_at_utc,
        cast({{ dbt.date_trunc('day', 'votes.submitted_at_utc') }} as date) as submitted_on,
        votes.language_code,
        votes.country_code,
        countries.region_code,
        countries.is_un_member,
        votes.library_type_code,
        votes.age_group_code,
        votes.years_experience,
        experience_bands.experience_band_code,
        {%- for n in range(1, 7) %}
        votes.q{{ n }}_choices,
        {%- endfor %}
        votes.file_name,
        votes.record_number
    from votes
    left join countries
        on votes.country_code = countries.country_code
    left join experience_bands
        on votes.years_experience >= experience_bands.min_years
        and (experience_bands.max_years is null or votes.years_experience <= experience_bands.max_years)
)

select * from final
