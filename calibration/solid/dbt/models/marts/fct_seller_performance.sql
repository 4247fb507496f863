-- Every seller account (soft-deleted ones too: their sales happened).
with sales as (
    select
        seller_id,
        sum(total_price_usd)                as gmv_usd,
        count(distinct order_id)            as order_count
    from {{ ref('int_order_items_usd') }}
    where counts_for_gmv
    group by seller_id
),

ratings as (
    select p.seller_id, avg(r.rating) as avg_rating
    from {{ ref('stg_reviews') }} r
    join {{ ref('stg_products') }} p on p.product_id = r.product_id
    where r.status = 'approved'
    group by p.seller_id
)

select
    u.user_id                               as seller_id,
    coalesce(s.gmv_usd, 0)                  as gmv_usd,
    coalesce(s.order_count, 0)              as order_count,
    r.avg_rating,
    u.profile_seller_tier                   as current_tier
from {{ ref('stg_users') }} u
left join sales s on s.seller_id = u.user_id
left join ratings r on r.seller_id = u.user_id
where u.user_type in ('seller', 'both')
