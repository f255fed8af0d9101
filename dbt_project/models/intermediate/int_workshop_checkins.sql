-- One row per distinct participant checked in at a workshop that counts (a second
-- check-in of the same participant_ref is a duplicate in the raw layer). The country,
-- library type, age group and experience are the participant's, not the workshop's.
with checkins as (
    select *
    from {{ ref('stg_raw__workshop_events') }}
    where outcome = 'accepted'
        and event_type = 'participant_checked_in'
),

workshops as (
    select
        workshop_id,
        held_on
    from {{ ref('int_workshops_counting') }}
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
        -- pseudonymous key of the participant: participant_ref is only unique per workshop
        {{ dbt.hash(dbt.concat(['checkins.workshop_id', "'|'", 'checkins.participant_ref'])) }} as participant_key,
        checkins.workshop_id,
        checkins.participant_ref,
        checkins.occurred_at_utc as checked_in_at_utc,
        workshops.held_on,
        checkins.country_code,
        countries.region_code,
        countries.is_un_member,
        checkins.library_type_code,
        checkins.age_group_code,
        checkins.years_experience,
        experience_bands.experience_band_code
    from checkins
    inner join workshops
        on checkins.workshop_id = workshops.workshop_id
    left join countries
        on checkins.country_code = countries.country_code
    left join experience_bands
        on checkins.years_experience >= experience_bands.min_years
        and (experience_bands.max_years is null or checkins.years_experience <= experience_bands.max_years)
)

select * from final
