-- The open SCD2 period of each seller is the current tier (users.seller_tier can lag behind).
select seller_id, tier as current_tier
from {{ ref('stg_seller_tier_history') }}
where is_current
