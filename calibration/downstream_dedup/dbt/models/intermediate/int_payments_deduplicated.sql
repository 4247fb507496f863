-- One row per payment event. A provider replays a webhook with the same event_id, amount and
-- status but a new row id and a later timestamp: the first delivery is the event, later ones
-- are noise. The number of deliveries is kept so replays stay visible.
with deliveries as (
    select
        *,
        row_number() over (partition by event_id order by event_timestamp, payment_row_id) as delivery_number,
        count(*) over (partition by event_id)                                            as deliveries
    from {{ ref('stg_payments') }}
)

select
    event_id,
    payment_row_id      as first_payment_row_id,
    order_id,
    payment_provider,
    payment_provider_id,
    amount,
    currency,
    status,
    event_timestamp,
    deliveries
from deliveries
where delivery_number = 1
