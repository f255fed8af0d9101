{#-
    One row per item of a delimited string column, with the item's 1-based position
    (unless position_alias is none).

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

{#- DuckDB: unnest in the select list, with the item's subscript beside it (the two expand
    in lockstep). A lateral `cross join unnest(...) with ordinality` is planned as a
    correlated join (the lists de-duplicated, materialised and joined back), several times
    slower over the 13 million answers of scale 100. -#}
{% macro duckdb__explode_delimited(relation, id_columns, list_column, delimiter, value_alias, position_alias) -%}
    select
        {%- for column in id_columns %}
        {{ column }},
        {%- endfor %}
        trim(unnest(items)) as {{ value_alias }}
        {%- if position_alias %},
        cast(generate_subscripts(items, 1) as {{ dbt.type_int() }}) as {{ position_alias }}
        {%- endif %}
    from (
        select
            {%- for column in id_columns %}
            {{ column }},
            {%- endfor %}
            string_split({{ list_column }}, '{{ delimiter }}') as items
        from {{ relation }}
    ) as src
{%- endmacro %}

{#- Spark / Databricks (and the fallback): posexplode over split; split takes a regular
    expression, which is why the delimiter must not be a metacharacter. posexplode
    counts from 0. -#}
{% macro default__explode_delimited(relation, id_columns, list_column, delimiter, value_alias, position_alias) -%}
    select
        {%- for column in id_columns %}
        src.{{ column }},
        {%- endfor %}
        trim(items.{{ value_alias }}) as {{ value_alias }}
        {%- if position_alias %},
        cast(items.item_index + 1 as {{ dbt.type_int() }}) as {{ position_alias }}
        {%- endif %}
    from {{ relation }} as src
    lateral view posexplode(split(src.{{ list_column }}, '{{ delimiter }}')) items as item_index, {{ value_alias }}
{%- endmacro %}
