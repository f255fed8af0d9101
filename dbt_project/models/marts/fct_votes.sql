-- One row per vote. Neither the e-mail nor the platform's response id leaves the
-- intermediate layer: the vote is identified by a hash of the response id and the
-- respondent by the salted e-mail hash computed at ingestion.
with votes as (
    select * from {{ ref('int_votes_accepted') }}
),

choices as (
    select
        vote_key,
        count(distinct question_code) as questions_answered,
        count(*) as options_chosen
    from {{ ref('fct_vote_choices') }}
    group by vote_key
),

final as (
    select
        votes.vote_key,
        votes.respondent_key,
        votes.submitted_at_utc,
        votes.submitted_on,
        votes.language_code,
        votes.country_code,
        votes.region_code,
        votes.library_type_code,
        votes.age_group_code,
        votes.years_experience,
        votes.experience_band_code,
        cast(coalesce(choices.questions_answered, 0) as {{ dbt.type_int() }}) as questions_answered,
        cast(coalesce(choices.options_chosen, 0) as {{ dbt.type_int() }}) as options_chosen
    from votes
    left join choices
        on votes.vote_key = choices.vote_key
)

select * from final
