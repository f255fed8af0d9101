{#-
    One row per item of a delimited string column, with the item's 1-based position.

    relation:       a relation or CTE name to read from
    id_columns:     columns of relation to carry onto every item row
    list_column:    the delimited string column
    delimiter:      a single literal character (no regular-expression metacharacter)
    value_alias / position_alias: names of the output columns

    Items are trimmed; an empty string yields one empty item, so callers filter
    `value_alias <> ''`. List explosion has no portable SQL, hence the dispatch.
-#}
{% macro explode_delimited(relation, id_columns, list_column, delimiter, value_alias='item', position_alias='item_position') -%}
    {{ return(adapter.dispatch('explode_delimited')(relation, id_columns, list_column, delimiter, value_alias, position_alias)) }}
{%- endmacro %}

{% macro duckdb__explode_delimited(relation, id_columns, list_column, delimiter, value_alias, position_alias) -%}
    select
        {%- for column in id_columns %}
        src.{{ column }},
        {%- endfor %}
        trim(items.{{ value_alias }}) as {{ value_alias }},
        cast(items.{{ position_alias }} as {{ dbt.type_int() }}) as {{ position_alias }}
    from {{ relation }} as src
    cross join unnest(string_split(src.{{ list_column }}, '{{ delimiter }}'))
        with ordinality as items ({{ value_alias }}, {{ position_alias }})
{%- endmacro %}

{#- Spark / Databricks (and the fallback): posexplode over split; split takes a regular
    expression, which is why the delimiter must not be a metacharacter. posexplode
    counts from 0. -#}
{% macro default__explode_delimited(relation, id_columns, list_column, delimiter, value_alias, position_alias) -%}
    select
        {%- for column in id_columns %}
        src.{{ column }},
        {%- endfor %}
        trim(items.{{ value_alias }}) as {{ value_alias }},
        cast(items.item_index + 1 as {{ dbt.type_int() }}) as {{ position_alias }}
    from {{ relation }} as src
    lateral view posexplode(split(src.{{ list_column }}, '{{ delimiter }}')) items as item_index, {{ value_alias }}
{%- endmacro %}
