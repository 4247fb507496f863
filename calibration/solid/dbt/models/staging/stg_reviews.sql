select
    id                  as review_id,
    product_id,
    order_item_id,
    reviewer_id,
    rating,
    status,
    is_verified_purchase,
    created_at
from {{ source('raw', 'reviews') }}
