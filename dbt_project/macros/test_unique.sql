{#-
    DuckDB version of dbt's built-in unique test (found first: dispatch searches the root
    project before dbt's own). Same failures as dbt's default__test_unique - one row per
    non-null value that occurs more than once, with its number of records - found like
    unique_combination_of_columns (macros/unique_combination_of_columns_sql.sql): the
    values' 64-bit hashes are sorted to find the repeated ones, and only the rows with a
    repeated hash are grouped exactly. Grouping millions of 32-character keys directly
    costs about twice as much.
-#}
{% macro duckdb__test_unique(model, column_name) %}
{{ duckdb__unique_combination_of_columns_sql(model, [column_name], skip_nulls=true) }}
{% endmacro %}
