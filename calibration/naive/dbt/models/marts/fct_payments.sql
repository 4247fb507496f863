select distinct *
from (
    select
        event_id,
        order_id,
        status,
        amount,
        currency,
        amount as amount_usd,
        event_timestamp
    from {{ source('raw', 'payments') }}
)
