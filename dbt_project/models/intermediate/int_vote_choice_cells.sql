{{ config(materialized="table") }}

-- One row per cell of the vote attributes the theme rankings are scoped by (region,
-- library type, age group, experience band, language) x chosen option (its code names its
-- question): the choices of the cell's votes, i.e. their rows in int_vote_choices. The
-- rankings roll these few hundred thousand cells up to every scope instead of joining
-- each choice to each of its scopes. The answers are exploded again from the votes (no
-- vote key needed), cheaper than joining the exploded choices back to their votes; the
-- unpivot reads the votes table six times directly (a CTE read six times would be
-- materialised first).
with answers as (
    {{- vote_answers(ref('int_votes_accepted'), ranking_scope_columns()) }}
),

exploded as (
    {{ explode_delimited('answers', ranking_scope_columns(), 'choice_list', ';', 'option_code', none) }}
),

final as (
    select
        {%- for column in ranking_scope_columns() %}
        {{ column }},
        {%- endfor %}
        option_code,
        count(*) as choices
    from exploded
    where option_code <> ''
    group by
        {%- for column in ranking_scope_columns() %}
        {{ column }},
        {%- endfor %}
        option_code
)

select * from final
