-- grain: one row per phase that has a failed task or an error occurrence
-- depends_on: int_failure_rate_by_dimension
with by_dimension as (
    select * from int_failure_rate_by_dimension
    where dimension = 'phase'
)

select * exclude (dimension) rename (value as phase)
from by_dimension
order by failed_tasks desc, error_occurrences desc, phase asc
