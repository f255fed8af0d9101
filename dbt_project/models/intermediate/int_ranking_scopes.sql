-- Every scope value the theme rankings are reported for: 'all' for global, and every
-- value of each scope type's code list, whether or not anyone answered in it.
with final as (
    {%- for scope in ranking_scopes() %}
    select
        cast('{{ scope.scope_type }}' as {{ dbt.type_string() }}) as scope_type,
        {%- if scope.seed %}
        cast({{ scope.code_column }} as {{ dbt.type_string() }}) as scope_value,
        {%- else %}
        cast('{{ global_scope_value() }}' as {{ dbt.type_string() }}) as scope_value,
        {%- endif %}
        {{ 'true' if scope.applies_to_workshops else 'false' }} as applies_to_workshops
    {%- if scope.seed %}
    from {{ ref(scope.seed) }}
    {%- endif %}
    {{ "union all" if not loop.last }}
    {%- endfor %}
)

select * from final
