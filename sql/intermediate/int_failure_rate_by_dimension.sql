-- grain: one row per dimension (error_code, phase, system) and value with a failed task or error
-- depends_on: stg_tasks
-- materialized: table (read by several models; computed once per build)
-- The three failure_rate_by_<dimension> models share this one shape; each selects its dimension.
with completed_tasks as (
    select * from stg_tasks
    where is_completed
),

totals as (
    select
        count(*) as completed_tasks,
        count(*) filter (where is_failed) as all_failed_tasks
    from completed_tasks
),

task_dimensions as (
    select * from completed_tasks
    unpivot (value for dimension in (error_code, phase, system))
),

by_value as (
    select
        dimension,
        value,
        count(*) filter (where is_failed) as failed_tasks,
        count(*) filter (where has_error_row) as error_occurrences,
        count(distinct row(connection_id, run_id)) filter (where is_failed) as runs_affected,
        count(distinct connection_id) filter (where is_failed) as connections_affected,
        min(run_start_time) filter (where is_failed) as first_seen,
        max(run_start_time) filter (where is_failed) as last_seen
    from task_dimensions
    group by dimension, value
),

final as (
    select
        by_value.dimension,
        by_value.value,
        by_value.failed_tasks,
        by_value.error_occurrences,
        totals.completed_tasks,
        cast(by_value.failed_tasks as double) / nullif(totals.completed_tasks, 0) as failure_rate,
        cast(by_value.failed_tasks as double) / nullif(totals.all_failed_tasks, 0)
            as share_of_failures,
        by_value.runs_affected,
        by_value.connections_affected,
        by_value.first_seen,
        by_value.last_seen
    from by_value
    cross join totals
    where by_value.failed_tasks > 0 or by_value.error_occurrences > 0
)

select * from final
