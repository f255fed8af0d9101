with source as (
    select * from {{ source('raw', 'votes') }}
),

final as (
    select
        cast(sha256 as {{ dbt.type_string() }}) as file_sha256,
        cast(file_name as {{ dbt.type_string() }}) as file_name,
        cast(record_number as {{ dbt.type_int() }}) as record_number,
        cast(response_id as {{ dbt.type_string() }}) as response_id,
        cast(submitted_at as {{ dbt.type_timestamp() }}) as submitted_at_utc,
        trim(cast(language as {{ dbt.type_string() }})) as language_code,
        upper(trim(cast(country as {{ dbt.type_string() }}))) as country_code,
        trim(cast(library_type as {{ dbt.type_string() }})) as library_type_code,
        cast(years_experience as {{ dbt.type_int() }}) as years_experience,
        trim(cast(age_group as {{ dbt.type_string() }})) as age_group_code,
        cast(respondent_key as {{ dbt.type_string() }}) as respondent_key,
        {%- for n in range(1, 7) %}
        -- blank answers arrive as '' (null tolerated): normalise to ''
        coalesce(trim(cast(q{{ n }} as {{ dbt.type_string() }})), '') as q{{ n }}_choices,
        {%- endfor %}
        cast(outcome as {{ dbt.type_string() }}) as outcome
    from source
)

select * from final
