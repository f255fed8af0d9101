with answers as (
    select * from {{ ref('int_workshop_answers') }}
),

final as (
    select
        workshop_id,
        question_code,
        answer_rank,
        option_code,
        borda_points
    from answers
)

select * from final
