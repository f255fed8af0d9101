-- One row per workshop that counts x question x rank: the winning answer_ranked event
-- (a replaced one is superseded in the raw layer), with its Borda points.
with answers as (
    select *
    from {{ ref('stg_raw__workshop_events') }}
    where outcome = 'accepted'
        and event_type = 'answer_ranked'
),

workshops as (
    select workshop_id
    from {{ ref('int_workshops_counting') }}
),

final as (
    select
        answers.workshop_id,
        answers.question_code,
        answers.answer_rank,
        answers.option_code,
        cast({{ borda_points('answers.answer_rank') }} as {{ dbt.type_int() }}) as borda_points
    from answers
    inner join workshops
        on answers.workshop_id = workshops.workshop_id
)

select * from final
