-- Statuses only move forward: a delivered order (delivered_at set) is delivered or refunded, never back to pending.
select order_id
from {{ ref('stg_orders') }}
where delivered_at is not null and status not in ('delivered', 'refunded')
   or shipped_at is not null and status in ('pending', 'confirmed', 'processing')
