-- One row per participant of the consultation: every vote, and every distinct check-in
-- at a workshop that counts. Countries are the participant's own (vote country or
-- check-in country), not the workshop's.
with votes as (
    select * from {{ ref('int_votes_accepted') }}
),

checkins as (
    select * from {{ ref('int_workshop_checkins') }}
),

unioned as (
    select
        vote_key as participant_key,
        cast('vote' as {{ dbt.type_string() }}) as channel,
        vote_key,
        cast(null as {{ dbt.type_string() }}) as workshop_id,
        submitted_on as participated_on,
        country_code,
        region_code,
        is_un_member,
        library_type_code,
        age_group_code,
        years_experience,
        experience_band_code
    from votes

    union all

    select
        participant_key,
        cast('workshop' as {{ dbt.type_string() }}) as channel,
        cast(null as {{ dbt.type_string() }}) as vote_key,
        workshop_id,
        held_on as participated_on,
        country_code,
        region_code,
        is_un_member,
        library_type_code,
        age_group_code,
        years_experience,
        experience_band_code
    from checkins
),

final as (
    select * from unioned
)

select * from final
