-- Orders. confirmed_at arrives as New York wall-clock time without a zone (see the column
-- comment in Postgres): TIMESTAMP(datetime, zone) turns it into the true UTC instant, DST included.
select
    id                                                  as order_id,
    order_number,
    buyer_id,
    status,
    subtotal_amount,
    shipping_amount,
    tax_amount,
    discount_amount,
    total_amount,
    currency,
    shipping_country,
    shipping_city,
    shipping_postal_code,
    created_at,
    updated_at,
    timestamp(confirmed_at, 'America/New_York')         as confirmed_at,
    shipped_at,
    delivered_at,
    _airbyte_extracted_at                               as extracted_at
from {{ source('raw', 'orders') }}
