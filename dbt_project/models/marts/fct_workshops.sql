-- One row per workshop that counts. Its participants are the distinct check-ins; a
-- difference from the number reported at closing is flagged (a data-quality warning,
-- not an error: the check-ins count).
with workshops as (
    select * from {{ ref('int_workshops_counting') }}
),

checkins as (
    select
        workshop_id,
        count(*) as participants
    from {{ ref('int_workshop_checkins') }}
    group by workshop_id
),

counted as (
    select
        workshops.workshop_id,
        workshops.workshop_kind_code,
        workshops.workshop_title,
        workshops.held_on,
        workshops.country_code,
        workshops.region_code,
        workshops.city,
        workshops.language_code,
        coalesce(checkins.participants, 0) as participants,
        workshops.reported_participants
    from workshops
    left join checkins
        on workshops.workshop_id = checkins.workshop_id
),

final as (
    select
        workshop_id,
        workshop_kind_code,
        workshop_title,
        held_on,
        country_code,
        region_code,
        city,
        language_code,
        cast(participants as {{ dbt.type_int() }}) as participants,
        reported_participants,
        participants <> reported_participants as participants_mismatch
    from counted
)

select * from final
