select
    p.id as product_id,
    p.seller_id,
    p.category_id,
    c.name as top_level_category,
    p.price_amount,
    p.price_currency,
    p.price_amount as price_usd,
    p.updated_at
from {{ source('raw', 'products') }} p
join {{ source('raw', 'categories') }} c on c.id = p.category_id
where p.updated_at <= current_timestamp()
