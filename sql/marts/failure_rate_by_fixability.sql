-- grain: one row per fixability that has a failed task or an error occurrence
-- fixability: user_fixable, not_user_fixable or (unspecified), as stg_tasks decides it
-- depends_on: int_failure_rate_by_dimension
with by_dimension as (
    select * from int_failure_rate_by_dimension
    where dimension = 'fixability'
)

select * exclude (dimension) rename (value as fixability)
from by_dimension
order by failed_tasks desc, error_occurrences desc, fixability asc
