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

-- failures and error occurrences are counted apart: the failed tasks are few, so their
-- runs and first and last starts stay small, and occurrences need only a count. Failures
-- are grouped by run first, so each run counts once in runs_affected without a distinct
-- count (which DuckDB computes as another grouping and a join).
failures_by_run as (
    select
        run_day,
        connection_id,
        dimension,
        value,
        run_id,
        count(*) as failed_tasks,
        min(run_start_time) as run_start_time
    from task_dimensions
    where is_failed
    group by run_day, connection_id, dimension, value, run_id
),

failures as (
    select
        run_day as day,
        connection_id,
        dimension,
        value,
        cast(sum(failed_tasks) as bigint) as failed_tasks,
        count(*) as runs_affected,
        min(run_start_time) as first_seen,
        max(run_start_time) as last_seen
    from failures_by_run
    group by run_day, connection_id, dimension, value
),

occurrences as (
    select
        run_day as day,
        connection_id,
        dimension,
        value,
        count(*) as error_occurrences
    from task_dimensions
    where has_error_row
    group by run_day, connection_id, dimension, value
),

by_value as (
    select
        coalesce(failures.day, occurrences.day) as day,
        coalesce(failures.connection_id, occurrences.connection_id) as connection_id,
        coalesce(failures.dimension, occurrences.dimension) as dimension,
        coalesce(failures.value, occurrences.value) as value,
        coalesce(failures.failed_tasks, 0) as failed_tasks,
        coalesce(occurrences.error_occurrences, 0) as error_occurrences,
        coalesce(failures.runs_affected, 0) as runs_affected,
        failures.first_seen,
        failures.last_seen
    from failures
    full outer join occurrences
        on failures.day is not distinct from occurrences.day
        and failures.connection_id = occurrences.connection_id
        and failures.dimension = occurrences.dimension
        and failures.value = occurrences.value
)

select * from by_value
