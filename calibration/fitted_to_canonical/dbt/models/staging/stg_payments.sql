-- Every delivery of a payment webhook, renamed and typed; fct_payments drops the replays.
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
