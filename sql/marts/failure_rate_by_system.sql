-- grain: one row per system that has a failed task or an error occurrence
-- depends_on: int_failure_rate_by_dimension
with by_dimension as (
    select * from int_failure_rate_by_dimension
    where dimension = 'system'
)

select * exclude (dimension) rename (value as system)
from by_dimension
order by failed_tasks desc, error_occurrences desc, system asc
