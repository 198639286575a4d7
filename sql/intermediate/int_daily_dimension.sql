-- grain: one row per UTC run day, connection, dimension and value with a failed task or error
-- depends_on: stg_tasks
-- materialized: table (read by the dimension marts and the error-code trend)
-- incremental: day_connection
-- dimensions: error_code, phase, system, fixability, description_key. A run belongs to one
-- day and one connection, so runs_affected adds up exactly across days and connections.
-- a completed task that neither failed nor has an error row adds nothing to any row
-- only the columns used: unpivot repeats every column it keeps five times
with relevant_tasks as (
    select
        run_day,
        connection_id,
        run_id,
        run_start_time,
        is_failed,
        has_error_row,
        error_code,
        phase,
        system,
        fixability,
        description_key
    from stg_tasks
    where is_completed and (is_failed or has_error_row)
),

task_dimensions as (
    select * from relevant_tasks
    unpivot (value for dimension in (error_code, phase, system, fixability, description_key))
),

-- one grouping by run first, so a run counts once in runs_affected without a distinct
-- count (which DuckDB computes as another grouping and a join)
by_run as (
    select
        run_day,
        connection_id,
        dimension,
        value,
        run_id,
        count(*) filter (where is_failed) as failed_tasks,
        count(*) filter (where has_error_row) as error_occurrences,
        min(run_start_time) as run_start_time
    from task_dimensions
    group by run_day, connection_id, dimension, value, run_id
),

-- first and last seen: the starts of runs with a failed task, not of any error row
by_value as (
    select
        run_day as day,
        connection_id,
        dimension,
        value,
        cast(sum(failed_tasks) as bigint) as failed_tasks,
        cast(sum(error_occurrences) as bigint) as error_occurrences,
        count(*) filter (where failed_tasks > 0) as runs_affected,
        min(run_start_time) filter (where failed_tasks > 0) as first_seen,
        max(run_start_time) filter (where failed_tasks > 0) as last_seen
    from by_run
    group by run_day, connection_id, dimension, value
)

select * from by_value
