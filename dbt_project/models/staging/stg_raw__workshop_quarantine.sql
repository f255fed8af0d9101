with source as (
    select * from {{ source('raw', 'workshop_quarantine') }}
),

-- record_text (the masked line as delivered) stays in the raw layer.
final as (
    select
        cast(sha256 as {{ dbt.type_string() }}) as file_sha256,
        cast(file_name as {{ dbt.type_string() }}) as file_name,
        cast(line_number as {{ dbt.type_int() }}) as line_number,
        cast(reason as {{ dbt.type_string() }}) as reason_code,
        cast(detail as {{ dbt.type_string() }}) as detail,
        cast(event_id as {{ dbt.type_string() }}) as event_id,
        cast(workshop_id as {{ dbt.type_string() }}) as workshop_id
    from source
)

select * from final
