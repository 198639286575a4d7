-- grain: one row per error_code that has a failed task or an error occurrence
-- depends_on: int_failure_rate_by_dimension
with by_dimension as (
    select * from int_failure_rate_by_dimension
    where dimension = 'error_code'
)

select * exclude (dimension) rename (value as error_code)
from by_dimension
order by failed_tasks desc, error_occurrences desc, error_code asc
