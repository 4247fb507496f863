select
    o.order_id,
    o.buyer_id,
    o.status,
    o.created_at,
    o.confirmed_at,
    o.subtotal_amount,
    o.shipping_amount,
    o.tax_amount,
    o.discount_amount,
    o.total_amount,
    o.currency,
    round(o.total_amount * r.usd_rate, 2)   as total_amount_usd
from {{ ref('stg_orders') }} o
join {{ ref('exchange_rates') }} r on r.currency_code = o.currency
