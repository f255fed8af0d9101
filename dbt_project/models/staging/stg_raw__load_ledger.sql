with source as (
    select * from {{ source('raw', 'load_ledger') }}
),

final as (
    select
        cast(sha256 as {{ dbt.type_string() }}) as file_sha256,
        cast(source as {{ dbt.type_string() }}) as source_name,
        cast(file_name as {{ dbt.type_string() }}) as file_name,
        cast(delivery_seq as {{ dbt.type_int() }}) as delivery_seq,
        cast(size_bytes as {{ dbt.type_bigint() }}) as size_bytes,
        cast(first_seen_at as {{ dbt.type_timestamp() }}) as first_seen_at_utc,
        cast(run_id as {{ dbt.type_string() }}) as run_id,
        cast(records_read as {{ dbt.type_bigint() }}) as records_read,
        cast(file_status as {{ dbt.type_string() }}) as file_status,
        coalesce(cast(extra_columns as {{ dbt.type_string() }}), '') as extra_columns,
        cast(message as {{ dbt.type_string() }}) as message
    from source
)

select * from final
