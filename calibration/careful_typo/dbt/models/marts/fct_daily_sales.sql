-- GMV per UTC order date x shipping country x top-level category.
select
    order_date,
    shipping_country,
    top_level_category,
    sum(total_price_usd)                    as gmv_usd,
    count(distinct order_id)                as order_count
from {{ ref('int_order_items_usd' }}
where counts_for_gmv
group by order_date, shipping_country, top_level_category
