-- One row per counting workshop x ranking scope type that applies to workshops
-- (global, region from the workshop's country, the workshop's language).
with workshops as (
    select * from {{ ref('int_workshops_counting') }}
),

final as (
    {%- set scopes = ranking_scopes() | selectattr('applies_to_workshops') | list %}
    {%- for scope in scopes %}
    select
        workshop_id,
        cast('{{ scope.scope_type }}' as {{ dbt.type_string() }}) as scope_type,
        {%- if scope.column %}
        cast({{ scope.column }} as {{ dbt.type_string() }}) as scope_value
        {%- else %}
        cast('{{ global_scope_value() }}' as {{ dbt.type_string() }}) as scope_value
        {%- endif %}
    from workshops
    {{ "union all" if not loop.last }}
    {%- endfor %}
)

select * from final
