with source as (
    select * from {{ source('raw', 'vote_quarantine') }}
),

-- record_text is left in the raw layer: it is the record as delivered (e-mail masked)
-- and is only needed when someone investigates a quarantined record there.
final as (
    select
        cast(sha256 as {{ dbt.type_string() }}) as file_sha256,
        cast(file_name as {{ dbt.type_string() }}) as file_name,
        cast(record_number as {{ dbt.type_int() }}) as record_number,
        cast(reason as {{ dbt.type_string() }}) as reason_code,
        cast(detail as {{ dbt.type_string() }}) as detail,
        cast(response_id as {{ dbt.type_string() }}) as response_id
    from source
)

select * from final
