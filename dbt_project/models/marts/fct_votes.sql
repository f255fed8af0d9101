-- One row per vote. Neither the e-mail nor the platform's response id leaves the
-- intermediate layer: the vote is identified by a hash of the response id and the
-- respondent by the salted e-mail hash computed at ingestion.
with votes as (
    select * from {{ ref('int_votes_accepted') }}
),

-- per answer, the options chosen: the rows fct_vote_choices holds for it
answers_counted as (
    select
        *,
        {%- for n in range(1, 7) %}
        {{ count_delimited_items('q' ~ n ~ '_choices', ';') }} as q{{ n }}_options_chosen{{ "," if not loop.last }}
        {%- endfor %}
    from votes
),

-- per vote: the questions with at least one option chosen, and the options chosen
counted as (
    select
        *,
        {%- for n in range(1, 7) %}
        case when q{{ n }}_options_chosen > 0 then 1 else 0 end{{ " +" if not loop.last else " as questions_answered," }}
        {%- endfor %}
        {%- for n in range(1, 7) %}
        q{{ n }}_options_chosen{{ " +" if not loop.last else " as options_chosen" }}
        {%- endfor %}
    from answers_counted
),

final as (
    select
        vote_key,
        respondent_key,
        submitted_at_utc,
        submitted_on,
        language_code,
        country_code,
        region_code,
        library_type_code,
        age_group_code,
        years_experience,
        experience_band_code,
        cast(questions_answered as {{ dbt.type_int() }}) as questions_answered,
        cast(options_chosen as {{ dbt.type_int() }}) as options_chosen
    from counted
)

select * from final
