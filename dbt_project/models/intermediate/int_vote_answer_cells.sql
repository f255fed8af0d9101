{{ config(materialized="table") }}

-- One row per cell of the vote attributes the theme rankings are scoped by (region,
-- library type, age group, experience band, language) x question: the cell's votes that
-- answered the question, i.e. chose at least one of its options (a non-empty item in its
-- answer: a vote with rows for it in int_vote_choices). The denominator of the vote
-- shares, rolled up like int_vote_choice_cells.
with votes as (
    select * from {{ ref('int_votes_accepted') }}
),

cells as (
    select
        {%- for column in ranking_scope_columns() %}
        {{ column }},
        {%- endfor %}
        {%- for n in range(1, 7) %}
        sum(case when {{ count_delimited_items('q' ~ n ~ '_choices', ';') }} > 0 then 1 else 0 end) as q{{ n }}_votes_answering{{ "," if not loop.last }}
        {%- endfor %}
    from votes
    group by
        {{ ranking_scope_columns() | join(', ') }}
),

final as (
    {%- for n in range(1, 7) %}
    select
        {%- for column in ranking_scope_columns() %}
        {{ column }},
        {%- endfor %}
        cast('Q{{ n }}' as {{ dbt.type_string() }}) as question_code,
        cast(q{{ n }}_votes_answering as {{ dbt.type_bigint() }}) as votes_answering
    from cells
    {{ "union all" if not loop.last }}
    {%- endfor %}
)

select * from final
