-- One row per vote x ranking scope type: the scope value the vote counts in
-- (its region, library type, age group, experience band, language; 'all' for global).
with votes as (
    select * from {{ ref('int_votes_accepted') }}
),

final as (
    {%- for scope in ranking_scopes() %}
    select
        vote_key,
        cast('{{ scope.scope_type }}' as {{ dbt.type_string() }}) as scope_type,
        {%- if scope.column %}
        cast({{ scope.column }} as {{ dbt.type_string() }}) as scope_value
        {%- else %}
        cast('{{ global_scope_value() }}' as {{ dbt.type_string() }}) as scope_value
        {%- endif %}
    from votes
    {{ "union all" if not loop.last }}
    {%- endfor %}
)

select * from final
