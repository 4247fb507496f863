-- Order lines valued in USD, with the order's status and date for GMV.
select
    i.order_item_id,
    i.order_id,
    i.seller_id,
    i.product_id,
    o.status                                            as order_status,
    date(o.created_at)                                  as order_date,
    o.shipping_country,
    t.top_level_category,
    round(i.total_price * r.usd_rate, 2)                as total_price_usd,
    o.status in ('confirmed', 'processing', 'shipped', 'delivered') as counts_for_gmv
from {{ ref('stg_order_items') }} i
join {{ ref('stg_orders') }} o on o.order_id = i.order_id
join {{ ref('stg_products') }} p on p.product_id = i.product_id
join {{ ref('int_categories_top_level') }} t on t.category_id = p.category_id
join {{ ref('exchange_rates') }} r on r.currency_code = i.currency
