-- grain: one row per UTC run day, connection, error code, phase, system and message among
-- failed tasks (day, connection_id, error_code, phase, system, error_message)
-- depends_on: stg_tasks
-- materialized: table (the report's top causes and typical messages read it, not the tasks)
-- incremental: day_connection
with failed_tasks as (
    select * from stg_tasks
    where is_failed
),

by_cause as (
    select
        run_day as day,
        connection_id,
        error_code,
        phase,
        system,
        error_message,
        count(*) as failed_tasks
    from failed_tasks
    group by run_day, connection_id, error_code, phase, system, error_message
)

select * from by_cause
