-- SCD2 periods of one seller follow each other without overlapping; an overlap makes "the tier at a date" ambiguous.
select a.seller_id, a.tier_period_id
from {{ ref('stg_seller_tier_history') }} as a
join {{ ref('stg_seller_tier_history') }} as b
  on a.seller_id = b.seller_id
 and a.tier_period_id != b.tier_period_id
 and a.effective_from < coalesce(b.effective_to, timestamp('9999-12-31'))
 and b.effective_from < coalesce(a.effective_to, timestamp('9999-12-31'))
