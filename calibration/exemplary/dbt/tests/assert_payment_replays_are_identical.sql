-- A replayed webhook must carry the same amount, currency and status; otherwise dedup hides a real change.
select event_id
from {{ source('raw', 'payments') }}
group by event_id
having count(distinct amount) > 1 or count(distinct currency) > 1 or count(distinct status) > 1
