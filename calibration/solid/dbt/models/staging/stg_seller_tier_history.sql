select
    id                  as tier_period_id,
    user_id             as seller_id,
    tier,
    effective_from,
    effective_to,
    is_current,
    change_reason
from {{ source('raw', 'seller_tier_history') }}
