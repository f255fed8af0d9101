-- One row per vote x chosen option: the six `;`-joined answer columns unpivoted to one
-- row per answered question, then exploded to one row per option. (The unpivot reads the
-- votes table six times directly: a CTE read six times would be materialised first.)
with answers as (
    {{- vote_answers(ref('int_votes_accepted'), ['vote_key']) }}
),

exploded as (
    {{ explode_delimited('answers', ['vote_key', 'question_code'], 'choice_list', ';', 'option_code', 'choice_position') }}
),

final as (
    select
        vote_key,
        question_code,
        option_code,
        choice_position
    from exploded
    where option_code <> ''
)

select * from final
