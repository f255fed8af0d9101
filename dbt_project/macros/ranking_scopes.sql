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

{#-
    Roll-up of per-cell counts to every ranking scope in one aggregation: `group by` this
    (after `grouping sets (`) yields one grouping set per scope type, each keyed by `keys`
    plus the scope's column (global: `keys` alone). Cells must hold every scope column.
-#}
{% macro ranking_scope_grouping_sets(keys) -%}
    {%- set key_list = keys | join(', ') -%}
    ({{ key_list }})
    {%- for scope in ranking_scopes() if scope.column %},
        ({{ key_list }}, {{ scope.column }})
    {%- endfor %}
{%- endmacro %}

{#- The scope type of a row of ranking_scope_grouping_sets(): the scope whose column is
    grouped on (grouping() = 0), else global. -#}
{% macro ranking_scope_type_of_grouping() -%}
    case
        {%- for scope in ranking_scopes() if scope.column %}
        when grouping({{ scope.column }}) = 0 then '{{ scope.scope_type }}'
        {%- endfor %}
        else '{{ (ranking_scopes() | rejectattr('column') | first).scope_type }}'
    end
{%- endmacro %}

{#- The scope value of such a row: the grouped scope column's value (null stays null, so it
    matches no scope value), else the global scope value. -#}
{% macro ranking_scope_value_of_grouping() -%}
    case
        {%- for scope in ranking_scopes() if scope.column %}
        when grouping({{ scope.column }}) = 0 then {{ scope.column }}
        {%- endfor %}
        else '{{ global_scope_value() }}'
    end
{%- endmacro %}
