{#
    Use a model's custom schema as the dataset name as it is.

    dbt's default would prefix it with the target dataset (`staging_marts`); here a model
    configured with `+schema: marts` is built in `marts`, one with `+schema: staging` in
    `staging`, and a model without a custom schema in the target dataset (profiles.yml).
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
