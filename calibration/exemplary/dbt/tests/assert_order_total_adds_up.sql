-- total_amount = subtotal + shipping + tax - discount, to the cent.
select order_id
from {{ ref('stg_orders') }}
where abs(total_amount - (subtotal_amount + shipping_amount + tax_amount - discount_amount)) > 0.005
