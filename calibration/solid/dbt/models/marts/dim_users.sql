-- Users that exist (not soft-deleted). Suspended users (is_active = false, no deleted_at) stay.
-- A missing country becomes 'ZZ' (ISO 3166 user-assigned code, documented as "unknown").
select
    u.user_id,
    u.user_type,
    coalesce(u.country_code, 'ZZ')          as country_code,
    u.country_code is null                  as is_country_unknown,
    u.profile_seller_tier                   as current_seller_tier,
    u.is_active,
    u.created_at
from {{ ref('stg_users') }} u
where not u.is_deleted
