with choices as (
    select * from {{ ref('int_vote_choices') }}
),

final as (
    select
        vote_key,
        question_code,
        option_code,
        choice_position
    from choices
)

select * from final
