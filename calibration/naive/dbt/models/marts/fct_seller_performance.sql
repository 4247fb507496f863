select
    u.id as seller_id,
    sum(i.total_price) as gmv_usd,
    count(distinct i.order_id) as order_count,
    avg(r.rating) as avg_rating,
    u.seller_tier as current_tier
from {{ source('raw', 'users') }} u
join {{ source('raw', 'order_items') }} i on i.seller_id = u.id
left join {{ source('raw', 'reviews') }} r on r.product_id = i.product_id
where u.is_active
group by u.id, u.seller_tier
