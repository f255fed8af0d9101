-- Records per source and non-accepted outcome: every reason code of the contract
-- (missing_column included), duplicate, superseded and incomplete_workshop, with 0
-- where nothing had that outcome.
with outcome_codes as (
    select
        source,
        outcome_code,
        sort_order
    from {{ ref('outcome_codes') }}
    where outcome_class <> 'accepted'
),

vote_outcomes as (
    select
        cast('votes' as {{ dbt.type_string() }}) as source,
        reason_code as outcome_code
    from {{ ref('stg_raw__vote_quarantine') }}

    union all

    select
        cast('votes' as {{ dbt.type_string() }}) as source,
        outcome as outcome_code
    from {{ ref('stg_raw__votes') }}
    where outcome <> 'accepted'
),

workshop_outcomes as (
    select
        cast('workshops' as {{ dbt.type_string() }}) as source,
        reason_code as outcome_code
    from {{ ref('stg_raw__workshop_quarantine') }}

    union all

    select
        cast('workshops' as {{ dbt.type_string() }}) as source,
        outcome as outcome_code
    from {{ ref('stg_raw__workshop_events') }}
    where outcome <> 'accepted'
),

all_outcomes as (
    select * from vote_outcomes
    union all
    select * from workshop_outcomes
),

counted as (
    select
        source,
        outcome_code,
        count(*) as records
    from all_outcomes
    group by source, outcome_code
),

final as (
    select
        outcome_codes.source,
        outcome_codes.outcome_code as reason,
        cast(coalesce(counted.records, 0) as {{ dbt.type_bigint() }}) as records
    from outcome_codes
    left join counted
        on outcome_codes.source = counted.source
        and outcome_codes.outcome_code = counted.outcome_code
)

select * from final
