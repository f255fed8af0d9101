-- The consultation's headline figures (landing-zone contract, section 3), one row.
-- Participants are votes plus distinct check-ins at counting workshops; countries,
-- age groups, library types and regions are those of all participants.
with participation as (
    select * from {{ ref('fct_participation') }}
),

workshops as (
    select * from {{ ref('fct_workshops') }}
),

vote_figures as (
    select count(*) as votes
    from participation
    where channel = 'vote'
),

workshop_figures as (
    select
        count(*) as workshops,
        coalesce(sum(participants), 0) as workshop_participants
    from workshops
),

participant_figures as (
    select
        count(*) as participants,
        coalesce(sum(years_experience), 0) as library_experience_years,
        count(distinct case when is_un_member then country_code end) as un_member_states,
        count(distinct country_code) as countries_and_areas,
        count(distinct age_group_code) as age_groups_represented,
        count(distinct library_type_code) as library_types_represented,
        count(distinct region_code) as regions_represented
    from participation
),

final as (
    select
        cast(vote_figures.votes as {{ dbt.type_bigint() }}) as votes,
        cast(workshop_figures.workshops as {{ dbt.type_bigint() }}) as workshops,
        cast(workshop_figures.workshop_participants as {{ dbt.type_bigint() }}) as workshop_participants,
        cast(participant_figures.participants as {{ dbt.type_bigint() }}) as participants,
        cast(participant_figures.library_experience_years as {{ dbt.type_bigint() }}) as library_experience_years,
        cast(participant_figures.un_member_states as {{ dbt.type_bigint() }}) as un_member_states,
        cast(participant_figures.countries_and_areas as {{ dbt.type_bigint() }}) as countries_and_areas,
        cast(participant_figures.age_groups_represented as {{ dbt.type_bigint() }}) as age_groups_represented,
        cast(participant_figures.library_types_represented as {{ dbt.type_bigint() }}) as library_types_represented,
        cast(participant_figures.regions_represented as {{ dbt.type_bigint() }}) as regions_represented
    from vote_figures
    cross join workshop_figures
    cross join participant_figures
)

select * from final
