{#- Attached (as a Dagster asset check) to the ledger it reconciles. -#}
{{ config(meta={'dagster': {'ref': {'name': 'stg_raw__load_ledger'}}}) }}

-- Reconciliation: for every delivered file, the records read equal the records with an
-- outcome (passed + quarantined), and no record belongs to a file the ledger lacks or
-- to the wrong source. (Uniqueness of each record in its table is tested on staging.)
with ledger as (
    select
        file_sha256,
        source_name,
        records_read
    from {{ ref('stg_raw__load_ledger') }}
),

outcomes as (
    select file_sha256, cast('votes' as {{ dbt.type_string() }}) as source_name
    from {{ ref('stg_raw__votes') }}
    union all
    select file_sha256, cast('votes' as {{ dbt.type_string() }}) as source_name
    from {{ ref('stg_raw__vote_quarantine') }}
    union all
    select file_sha256, cast('workshops' as {{ dbt.type_string() }}) as source_name
    from {{ ref('stg_raw__workshop_events') }}
    union all
    select file_sha256, cast('workshops' as {{ dbt.type_string() }}) as source_name
    from {{ ref('stg_raw__workshop_quarantine') }}
),

outcome_counts as (
    select
        file_sha256,
        source_name,
        count(*) as records_with_outcome
    from outcomes
    group by file_sha256, source_name
),

final as (
    select
        coalesce(ledger.file_sha256, outcome_counts.file_sha256) as file_sha256,
        ledger.source_name as ledger_source,
        outcome_counts.source_name as outcome_source,
        ledger.records_read,
        outcome_counts.records_with_outcome
    from ledger
    full outer join outcome_counts
        on ledger.file_sha256 = outcome_counts.file_sha256
        and ledger.source_name = outcome_counts.source_name
    where ledger.file_sha256 is null
        or (outcome_counts.file_sha256 is null and ledger.records_read <> 0)
        or ledger.records_read <> outcome_counts.records_with_outcome
)

select * from final
