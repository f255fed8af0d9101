{{ config(meta={'dagster': {'ref': {'name': 'fct_votes'}}}) }}

-- The choices are counted three ways: fct_vote_choices explodes the answers, fct_votes
-- counts each vote's options and questions from the answers (int_votes_accepted), and the
-- theme rankings roll up per-cell counts (int_vote_choice_cells, int_vote_answer_cells).
-- All three must describe the same choices.
with exploded as (
    select count(*) as choices
    from {{ ref('fct_vote_choices') }}
),

per_vote as (
    select
        coalesce(sum(options_chosen), 0) as options_chosen,
        coalesce(sum(questions_answered), 0) as questions_answered
    from {{ ref('fct_votes') }}
),

choice_cells as (
    select coalesce(sum(choices), 0) as choices
    from {{ ref('int_vote_choice_cells') }}
),

answer_cells as (
    select coalesce(sum(votes_answering), 0) as votes_answering
    from {{ ref('int_vote_answer_cells') }}
),

final as (
    select
        exploded.choices as exploded_choices,
        per_vote.options_chosen,
        choice_cells.choices as cell_choices,
        per_vote.questions_answered,
        answer_cells.votes_answering as cell_votes_answering
    from exploded
    cross join per_vote
    cross join choice_cells
    cross join answer_cells
    where per_vote.options_chosen <> exploded.choices
        or choice_cells.choices <> exploded.choices
        or answer_cells.votes_answering <> per_vote.questions_answered
)

select * from final
