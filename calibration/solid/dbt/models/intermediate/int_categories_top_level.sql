-- Each category with the name of its level-1 ancestor (the tree is at most three levels deep).
select
    c.category_id,
    coalesce(g.category_name, p.category_name, c.category_name) as top_level_category
from {{ ref('stg_categories') }} c
left join {{ ref('stg_categories') }} p on p.category_id = c.parent_category_id
left join {{ ref('stg_categories') }} g on g.category_id = p.parent_category_id
