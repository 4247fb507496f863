select
    id as order_id,
    buyer_id,
    status,
    created_at,
    cast(confirmed_at as timestamp) as confirmed_at,
    total_amount,
    currency,
    total_amount as total_amount_usd
from {{ source('raw', 'orders') }}
