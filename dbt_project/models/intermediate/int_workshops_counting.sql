-- One row per workshop that counts: one that has a winning valid workshop_registered and
-- a winning valid workshop_closed event. Ingestion marks every event of the other
-- workshops incomplete_workshop, so accepted events only belong to counting workshops;
-- the inner join keeps that rule here too.
with events as (
    select *
    from {{ ref('stg_raw__workshop_events') }}
    where outcome = 'accepted'
),

registered as (
    select
        workshop_id,
        workshop_kind_code,
        workshop_title,
        held_on,
        country_code,
        city,
        language_code,
        occurred_at_utc as registered_at_utc
    from events
    where event_type = 'workshop_registered'
),

closed as (
    select
        workshop_id,
        reported_participants,
        occurred_at_utc as closed_at_utc
    from events
    where event_type = 'workshop_closed'
),

countries as (
    select
        country_code,
        region_code,
        is_un_member
    from {{ ref('countries') }}
),

final as (
    select
        registered.workshop_id,
        registered.workshop_kind_code,
        registered.workshop_title,
        registered.held_on,
        registered.country_code,
        countries.region_code,
        countries.is_un_member,
        registered.city,
        registered.language_code,
        registered.registered_at_utc,
        closed.closed_at_utc,
        closed.reported_participants
    from registered
    inner join closed
        on registered.workshop_id = closed.workshop_id
    left join countries
        on registered.country_code = countries.country_code
)

select * from final
