{#-
    The number of non-empty items of a delimited string column: items are trimmed, and
    empty ones (a blank answer, a stray delimiter) do not count. The count matches the rows
    explode_delimited yields for the same column once callers drop its empty items, so that
    per-row counts can be taken without exploding the lists.

    delimiter: a single literal character (no regular-expression metacharacter)
-#}
{% macro count_delimited_items(list_column, delimiter) -%}
    {{ return(adapter.dispatch('count_delimited_items')(list_column, delimiter)) }}
{%- endmacro %}

{% macro duckdb__count_delimited_items(list_column, delimiter) -%}
    len(list_filter(string_split({{ list_column }}, '{{ delimiter }}'), lambda item: trim(item) <> ''))
{%- endmacro %}

{#- Spark / Databricks (and the fallback): split takes a regular expression. -#}
{% macro default__count_delimited_items(list_column, delimiter) -%}
    size(filter(split({{ list_column }}, '{{ delimiter }}'), item -> trim(item) <> ''))
{%- endmacro %}
