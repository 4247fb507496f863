-- An order's subtotal is the sum of its items' total_price: a mismatch means items and orders disagree.
select o.order_id
from {{ ref('stg_orders') }} as o
left join {{ ref('stg_order_items') }} as i on i.order_id = o.order_id
group by o.order_id, o.subtotal_amount
having abs(o.subtotal_amount - coalesce(sum(i.total_price), 0)) > 0.005
