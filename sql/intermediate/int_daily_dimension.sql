-- grain: one row per UTC run day, connection, dimension and value with a failed task or error
-- depends_on: stg_tasks
-- materialized: table (read by the dimension marts and the error-code trend)
-- incremental: day_connection
-- dimensions: error_code, phase, system, fixability, description_key. A run belongs to one
-- day and one connection, so runs_affected adds up exactly across days and connections.
-- a completed task that neither failed nor has an error row adds nothing to any row
with relevant_tasks as (
    select * from stg_tasks
    where is_completed and (is_failed or has_error_row)
),

task_dimensions as (
    select * from relevant_tasks
    unpivot (value for dimension in (error_code, phase, system, fixability, description_key))
),

by_value as (
    select
        run_day as day,
        connection_id,
        dimension,
        value,
        count(*) filter (where is_failed) as failed_tasks,
        count(*) filter (where has_error_row) as error_occurrences,
        count(distinct run_id) filter (where is_failed) as runs_affected,
        min(run_start_time) filter (where is_failed) as first_seen,
        max(run_start_time) filter (where is_failed) as last_seen
    from task_dimensions
    group by run_day, connection_id, dimension, value
)

select * from by_value
where failed_tasks > 0 or error_occurrences > 0
