-- Refers to a model that does not exist: dbt cannot compile the project.
select order_id, buyer_id, status
from {{ ref('stg_orders_typo') }}
