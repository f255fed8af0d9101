{#- Composite-key uniqueness without dbt packages: fails on every combination that occurs
    more than once (one row per such combination, with its number of occurrences). Pair
    it with not_null on each column. The query is engine-specific (see
    macros/unique_combination_of_columns_sql.sql). -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
{{ unique_combination_of_columns_sql(model, combination_of_columns) }}
{% endtest %}
