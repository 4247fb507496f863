-- Users, one row per account, soft-deleted ones included (is_deleted): dim_users filters.
select
    id                                  as user_id,
    email,
    username,
    user_type,
    first_name,
    last_name,
    country_code,
    seller_tier                         as profile_seller_tier,
    seller_rating,
    created_at,
    updated_at,
    deleted_at,
    deleted_at is not null              as is_deleted,
    is_active,
    _airbyte_extracted_at               as extracted_at
from {{ source('raw', 'users') }}
