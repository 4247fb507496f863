-- updated_at is capped at the extraction time (sellers' clocks run ahead); the value the seller
-- reported stays beside it as updated_at_reported, with a flag, for the audit trail.
select
    p.product_id,
    p.seller_id,
    p.category_id,
    t.top_level_category,
    p.price_amount,
    p.price_currency,
    round(p.price_amount * r.usd_rate, 2)   as price_usd,
    p.status,
    p.updated_at,
    p.reported_updated_at                   as updated_at_reported,
    p.has_future_updated_at                 as updated_at_was_capped
from {{ ref('stg_products') }} p
join {{ ref('int_categories_top_level') }} t on t.category_id = p.category_id
join {{ ref('exchange_rates') }} r on r.currency_code = p.price_currency
