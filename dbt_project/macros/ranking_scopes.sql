{#-
    The scopes of the theme rankings: for each scope type, the column of the vote (or
    workshop) that holds its value, the code list (seed) its values come from, and whether
    workshops have that attribute. Workshops have a region (from their country) and a
    language, but no library type, age group or experience band.
-#}
{% macro ranking_scopes() -%}
    {{ return([
        {'scope_type': 'global', 'column': none, 'seed': none, 'code_column': none, 'applies_to_workshops': true},
        {'scope_type': 'region', 'column': 'region_code', 'seed': 'regions', 'code_column': 'region_code', 'applies_to_workshops': true},
        {'scope_type': 'library_type', 'column': 'library_type_code', 'seed': 'library_types', 'code_column': 'library_type_code', 'applies_to_workshops': false},
        {'scope_type': 'age_group', 'column': 'age_group_code', 'seed': 'age_groups', 'code_column': 'age_group_code', 'applies_to_workshops': false},
        {'scope_type': 'experience_band', 'column': 'experience_band_code', 'seed': 'experience_bands', 'code_column': 'experience_band_code', 'applies_to_workshops': false},
        {'scope_type': 'language', 'column': 'language_code', 'seed': 'languages', 'code_column': 'language_code', 'applies_to_workshops': true},
    ]) }}
{%- endmacro %}

{#- The value of the global scope. -#}
{% macro global_scope_value() -%}
    {{ return('all') }}
{%- endmacro %}

{#- Borda points of a workshop answer: rank 1 = 5 points .. rank 5 = 1 point. -#}
{% macro borda_points(rank_column) -%}
    (6 - {{ rank_column }})
{%- endmacro %}

{#- The vote columns the scopes other than global are keyed by. -#}
{% macro ranking_scope_columns() -%}
    {{ return(ranking_scopes() | selectattr('column') | map(attribute='column') | list) }}
{%- endmacro %}

{#-
    Per-cell counts rolled up to every ranking scope in one aggregation: a select of
    (scope_type, scope_value, key, alias = sum(measure)) from `cells`, which must hold
    every scope column. One grouping set per scope type, keyed by `key` plus the scope's
    column (global: `key` alone); grouping() tells which set a row belongs to. A null scope
    column value stays null as scope_value, so it matches no scope value.
-#}
{% macro roll_up_to_ranking_scopes(cells, key, measure, alias) -%}
    {%- set scoped = ranking_scopes() | selectattr('column') | list -%}
    select
        case
            {%- for scope in scoped %}
            when grouping({{ scope.column }}) = 0 then '{{ scope.scope_type }}'
            {%- endfor %}
            else '{{ (ranking_scopes() | rejectattr('column') | first).scope_type }}'
        end as scope_type,
        case
            {%- for scope in scoped %}
            when grouping({{ scope.column }}) = 0 then {{ scope.column }}
            {%- endfor %}
            else '{{ global_scope_value() }}'
        end as scope_value,
        {{ key }},
        cast(sum({{ measure }}) as {{ dbt.type_bigint() }}) as {{ alias }}
    from {{ cells }}
    group by grouping sets (
        ({{ key }})
        {%- for scope in scoped %},
        ({{ key }}, {{ scope.column }})
        {%- endfor %}
    )
{%- endmacro %}
