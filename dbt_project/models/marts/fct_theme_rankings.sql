-- Theme rankings per scope: for every scope value of every scope type (all code-list
-- values, even where nobody answered) and every option of every question,
--   votes           votes that chose the option,
--   vote_share      votes over the votes that answered that question in that scope (0 when none did),
--   vote_rank       1 = most votes, ties broken by option code,
--   workshop_points Borda points summed over the counting workshops in that scope,
--   workshop_rank   1 = most points, ties broken by option code;
-- the workshop columns are null for scope types workshops do not have.
with scopes as (
    select
        scope_type,
        scope_value,
        applies_to_workshops
    from {{ ref('int_ranking_scopes') }}
),

options as (
    select
        question_code,
        option_code
    from {{ ref('dim_option') }}
),

-- votes' choices and answers, counted per cell of the five vote attributes
choice_cells as (
    select * from {{ ref('int_vote_choice_cells') }}
),

answer_cells as (
    select * from {{ ref('int_vote_answer_cells') }}
),

workshop_scopes as (
    select
        workshop_id,
        scope_type,
        scope_value
    from {{ ref('int_workshop_scopes') }}
),

workshop_answers as (
    select
        workshop_id,
        question_code,
        option_code,
        borda_points
    from {{ ref('fct_workshop_answers') }}
),

-- the cells rolled up to every scope: one grouping set per scope type
option_votes as (
    {{ roll_up_to_ranking_scopes('choice_cells', 'option_code', 'choices', 'votes') }}
),

-- a vote answered a question when it chose at least one of its options
answering_votes as (
    {{ roll_up_to_ranking_scopes('answer_cells', 'question_code', 'votes_answering', 'votes_answering') }}
),

option_points as (
    select
        workshop_scopes.scope_type,
        workshop_scopes.scope_value,
        workshop_answers.option_code,
        sum(workshop_answers.borda_points) as points
    from workshop_answers
    inner join workshop_scopes
        on workshop_answers.workshop_id = workshop_scopes.workshop_id
    group by workshop_scopes.scope_type, workshop_scopes.scope_value, workshop_answers.option_code
),

grid as (
    select
        scopes.scope_type,
        scopes.scope_value,
        scopes.applies_to_workshops,
        options.question_code,
        options.option_code
    from scopes
    cross join options
),

tallied as (
    select
        grid.scope_type,
        grid.scope_value,
        grid.applies_to_workshops,
        grid.question_code,
        grid.option_code,
        coalesce(option_votes.votes, 0) as votes,
        coalesce(answering_votes.votes_answering, 0) as votes_answering,
        case
            when grid.applies_to_workshops then coalesce(option_points.points, 0)
        end as workshop_points
    from grid
    left join option_votes
        on grid.scope_type = option_votes.scope_type
        and grid.scope_value = option_votes.scope_value
        and grid.option_code = option_votes.option_code
    left join answering_votes
        on grid.scope_type = answering_votes.scope_type
        and grid.scope_value = answering_votes.scope_value
        and grid.question_code = answering_votes.question_code
    left join option_points
        on grid.scope_type = option_points.scope_type
        and grid.scope_value = option_points.scope_value
        and grid.option_code = option_points.option_code
),

ranked as (
    select
        scope_type,
        scope_value,
        question_code,
        option_code,
        votes,
        case
            when votes_answering = 0 then 0.0
            else cast(votes as {{ type_double() }}) / votes_answering
        end as vote_share,
        row_number() over (
            partition by scope_type, scope_value, question_code
            order by votes desc, option_code
        ) as vote_rank,
        workshop_points,
        case
            when applies_to_workshops then row_number() over (
                partition by scope_type, scope_value, question_code
                order by workshop_points desc, option_code
            )
        end as workshop_rank
    from tallied
),

final as (
    select
        scope_type,
        scope_value,
        question_code,
        option_code,
        cast(votes as {{ dbt.type_bigint() }}) as votes,
        cast(vote_share as {{ type_double() }}) as vote_share,
        cast(vote_rank as {{ dbt.type_int() }}) as vote_rank,
        cast(workshop_points as {{ dbt.type_bigint() }}) as workshop_points,
        cast(workshop_rank as {{ dbt.type_int() }}) as workshop_rank
    from ranked
)

select * from final
