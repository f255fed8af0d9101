{#- A double-precision float. dbt.type_float() is single precision on some engines
    (DuckDB FLOAT is 4 bytes), too coarse for shares. -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double
{%- endmacro %}

{% macro postgres__type_double() -%}
    double precision
{%- endmacro %}
