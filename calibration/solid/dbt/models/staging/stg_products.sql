-- Products. updated_at comes from sellers' client clocks; some lie in the future. The reported
-- value is kept for audit, and updated_at is capped at the extraction time.
select
    id                                                      as product_id,
    seller_id,
    category_id,
    title,
    price_amount,
    price_currency,
    quantity_available,
    status,
    created_at,
    published_at,
    updated_at                                              as reported_updated_at,
    least(updated_at, _airbyte_extracted_at)                as updated_at,
    updated_at > _airbyte_extracted_at                      as has_future_updated_at,
    _airbyte_extracted_at                                   as extracted_at
from {{ source('raw', 'products') }}
