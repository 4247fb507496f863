-- No mart timestamp may be later than the extraction time.
with extracted as (select max(_airbyte_extracted_at) as at from {{ source('raw', 'orders') }})
select 'dim_products' as mart, product_id as id from {{ ref('dim_products') }}, extracted where updated_at > extracted.at
union all
select 'fct_orders', order_id from {{ ref('fct_orders') }}, extracted where confirmed_at > extracted.at or created_at > extracted.at
