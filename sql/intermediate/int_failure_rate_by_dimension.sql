-- grain: one row per dimension and value with a failed task or error (dimension, value)
-- depends_on: int_daily_dimension, int_daily_connection
-- materialized: table (read by the five dimension marts and a check; computed once per build)
-- The five failure_rate_by_<dimension> marts share this one shape; each selects its dimension.
with daily_dimension as (
    select * from int_daily_dimension
),

daily_connection as (
    select * from int_daily_connection
),

totals as (
    select
        coalesce(sum(completed_tasks), 0) as completed_tasks,
        coalesce(sum(failed_tasks), 0) as all_failed_tasks
    from daily_connection
),

by_value as (
    select
        dimension,
        value,
        sum(failed_tasks) as failed_tasks,
        sum(error_occurrences) as error_occurrences,
        sum(runs_affected) as runs_affected,
        count(distinct connection_id) filter (where failed_tasks > 0) as connections_affected,
        min(first_seen) as first_seen,
        max(last_seen) as last_seen
    from daily_dimension
    group by dimension, value
),

final as (
    select
        by_value.dimension,
        by_value.value,
        cast(by_value.failed_tasks as bigint) as failed_tasks,
        cast(by_value.error_occurrences as bigint) as error_occurrences,
        cast(totals.completed_tasks as bigint) as completed_tasks,
        cast(by_value.failed_tasks as double) / nullif(totals.completed_tasks, 0) as failure_rate,
        wilson_low(by_value.failed_tasks, totals.completed_tasks) as failure_rate_low,
        wilson_high(by_value.failed_tasks, totals.completed_tasks) as failure_rate_high,
        cast(by_value.failed_tasks as double) / nullif(totals.all_failed_tasks, 0)
            as share_of_failures,
        cast(by_value.runs_affected as bigint) as runs_affected,
        by_value.connections_affected,
        by_value.first_seen,
        by_value.last_seen
    from by_value
    cross join totals
)

select * from final
