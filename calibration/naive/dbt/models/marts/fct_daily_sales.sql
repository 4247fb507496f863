select
    date(o.created_at) as order_date,
    o.shipping_country,
    c.name as top_level_category,
    sum(i.total_price) as gmv_usd,
    count(*) as order_count
from {{ source('raw', 'order_items') }} i
join {{ source('raw', 'orders') }} o on o.id = i.order_id
join {{ source('raw', 'products') }} p on p.id = i.product_id
join {{ source('raw', 'categories') }} c on c.id = p.category_id
where o.status != 'cancelled'
group by 1, 2, 3
