-- One row per vote x chosen option: the six `;`-joined answer columns unpivoted to one
-- row per answered question, then exploded to one row per option.
with votes as (
    select
        vote_key,
        {%- for n in range(1, 7) %}
        q{{ n }}_choices{{ "," if not loop.last }}
        {%- endfor %}
    from {{ ref('int_votes_accepted') }}
),

answers as (
    {%- for n in range(1, 7) %}
    select
        vote_key,
        cast('Q{{ n }}' as {{ dbt.type_string() }}) as question_code,
        q{{ n }}_choices as choice_list
    from votes
    where q{{ n }}_choices <> ''
    {{ "union all" if not loop.last }}
    {%- endfor %}
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
