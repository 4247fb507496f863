-- Payment deliveries, one row per row of the source: staging renames and types, it does not
-- filter. Webhook replays (same event_id, new row id, later timestamps) are still here on
-- purpose; int_payments_deduplicated decides which delivery of an event counts.
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
