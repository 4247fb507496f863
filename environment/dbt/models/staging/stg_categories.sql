-- Staging model for the product taxonomy: one row per category, renamed and typed,
-- no business logic. Other staging models follow the same shape:
--   source CTE -> renamed CTE -> final select.

with source as (

    select * from {{ source('raw', 'categories') }}

),

renamed as (

    select
        id                      as category_id,
        name                    as category_name,
        slug                    as category_slug,
        parent_id               as parent_category_id,
        level                   as category_level,
        is_active,
        created_at,
        _airbyte_extracted_at   as extracted_at

    from source

)

select * from renamed
