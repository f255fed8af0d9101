{{ config(meta={'dagster': {'ref': {'name': 'rpt_headline_figures'}}}) }}

-- Participants = votes + workshop participants, in the headline figures and in the facts
-- they summarise (one row per vote and per distinct check-in at a counting workshop).
with headline as (
    select * from {{ ref('rpt_headline_figures') }}
),

fact_counts as (
    select
        (select count(*) from {{ ref('fct_votes') }}) as votes,
        (select coalesce(sum(participants), 0) from {{ ref('fct_workshops') }}) as workshop_participants,
        (select count(*) from {{ ref('fct_participation') }}) as participants
),

final as (
    select
        headline.votes as headline_votes,
        headline.workshop_participants as headline_workshop_participants,
        headline.participants as headline_participants,
        fact_counts.votes as fact_votes,
        fact_counts.workshop_participants as fact_workshop_participants,
        fact_counts.participants as fact_participants
    from headline
    cross join fact_counts
    where headline.participants <> headline.votes + headline.workshop_participants
        or headline.votes <> fact_counts.votes
        or headline.workshop_participants <> fact_counts.workshop_participants
        or headline.participants <> fact_counts.participants
        or fact_counts.participants <> fact_counts.votes + fact_counts.workshop_participants
)

select * from final
