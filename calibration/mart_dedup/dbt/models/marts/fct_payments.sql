-- One row per payment event: providers replay webhooks (same event_id, new row id, a few seconds
-- later), so the earliest delivery of each event_id is the event.
with first_delivery as (
    select *
    from {{ ref('stg_payments') }}
    qualify row_number() over (partition by event_id order by event_timestamp, payment_row_id) = 1
)

select
    p.event_id,
    p.order_id,
    p.status,
    p.amount,
    p.currency,
    round(p.amount * r.usd_rate, 2)         as amount_usd,
    p.event_timestamp
from first_delivery p
join {{ ref('exchange_rates') }} r on r.currency_code = p.currency
