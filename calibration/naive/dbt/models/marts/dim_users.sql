select
    id as user_id,
    user_type,
    country_code,
    seller_tier as current_seller_tier
from {{ source('raw', 'users') }}
where is_active
