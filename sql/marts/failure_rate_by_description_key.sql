-- grain: one row per description_key that has a failed task or an error occurrence
-- depends_on: int_failure_rate_by_dimension, stg_error_catalog
with by_dimension as (
    select * exclude (dimension) rename (value as description_key)
    from int_failure_rate_by_dimension
    where dimension = 'description_key'
),

error_catalog as (
    select * from stg_error_catalog
),

final as (
    select
        by_dimension.*,
        error_catalog.description_key is not null as in_catalog,
        error_catalog.description,
        error_catalog.category,
        error_catalog.can_user_fix,
        error_catalog.kb_article_link
    from by_dimension
    left join error_catalog on by_dimension.description_key = error_catalog.description_key
)

select * from final
order by failed_tasks desc, error_occurrences desc, description_key asc
