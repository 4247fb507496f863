select
    id              as order_item_id,
    order_id,
    product_id,
    seller_id,
    quantity,
    unit_price,
    total_price,
    currency,
    product_title,
    created_at
from {{ source('raw', 'order_items') }}
