-- Items are priced in their order's currency; one in another currency would be converted at the wrong rate.
select i.order_item_id
from {{ ref('stg_order_items') }} as i
join {{ ref('stg_orders') }} as o on o.order_id = i.order_id
where i.currency != o.currency
