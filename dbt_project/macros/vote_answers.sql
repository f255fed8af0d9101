{#-
    One row per vote x answered question of `relation` (int_votes_accepted or a CTE over
    it): the six `;`-joined answer columns q1_choices..q6_choices unpivoted to
    question_code (Q1..Q6) and choice_list, blank answers left out, with `id_columns`
    carried onto every row. Portable SQL: six selects under union all.
-#}
{% macro vote_answers(relation, id_columns) -%}
    {%- for n in range(1, 7) %}
    select
        {%- for column in id_columns %}
        {{ column }},
        {%- endfor %}
        cast('Q{{ n }}' as {{ dbt.type_string() }}) as question_code,
        q{{ n }}_choices as choice_list
    from {{ relation }}
    where q{{ n }}_choices <> ''
    {{ "union all" if not loop.last }}
    {%- endfor %}
{%- endmacro %}
