with source as (
    select * from {{ source('raw', 'workshop_events') }}
),

final as (
    select
        cast(sha256 as {{ dbt.type_string() }}) as file_sha256,
        cast(file_name as {{ dbt.type_string() }}) as file_name,
        cast(line_number as {{ dbt.type_int() }}) as line_number,
        cast(event_id as {{ dbt.type_string() }}) as event_id,
        cast(event_type as {{ dbt.type_string() }}) as event_type,
        cast(workshop_id as {{ dbt.type_string() }}) as workshop_id,
        cast(occurred_at as {{ dbt.type_timestamp() }}) as occurred_at_utc,
        trim(cast(kind as {{ dbt.type_string() }})) as workshop_kind_code,
        cast(title as {{ dbt.type_string() }}) as workshop_title,
        cast(held_on as date) as held_on,
        upper(trim(cast(country as {{ dbt.type_string() }}))) as country_code,
        cast(city as {{ dbt.type_string() }}) as city,
        trim(cast(language as {{ dbt.type_string() }})) as language_code,
        cast(participant_ref as {{ dbt.type_string() }}) as participant_ref,
        trim(cast(library_type as {{ dbt.type_string() }})) as library_type_code,
        cast(years_experience as {{ dbt.type_int() }}) as years_experience,
        trim(cast(age_group as {{ dbt.type_string() }})) as age_group_code,
        trim(cast(question as {{ dbt.type_string() }})) as question_code,
        cast(rank as {{ dbt.type_int() }}) as answer_rank,
        trim(cast(option_code as {{ dbt.type_string() }})) as option_code,
        cast(reported_participants as {{ dbt.type_int() }}) as reported_participants,
        cast(outcome as {{ dbt.type_string() }}) as outcome
    from source
)

select * from final
