select
    p.event_id,
    p.order_id,
    p.status,
    p.amount,
    p.currency,
    round(p.amount * r.usd_rate, 2)         as amount_usd,
    p.event_timestamp
from {{ ref('stg_payments') }} p
join {{ ref('exchange_rates') }} r on r.currency_code = p.currency
