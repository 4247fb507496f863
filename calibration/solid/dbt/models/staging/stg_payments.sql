-- Payment events. Providers replay webhooks: the same event_id arrives again with a new row id
-- and later timestamps. Keep the first delivery of each event.
select
    id                  as payment_row_id,
    event_id,
    order_id,
    payment_provider,
    payment_provider_id,
    amount,
    currency,
    platform_fee,
    seller_payout,
    status,
    processed_at,
    event_timestamp,
    created_at
from {{ source('raw', 'payments') }}
qualify row_number() over (partition by event_id order by event_timestamp, id) = 1
