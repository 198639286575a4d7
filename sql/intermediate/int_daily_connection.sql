-- grain: one row per UTC run day and connection with a run or a task (day, connection_id)
-- depends_on: stg_runs, stg_task_outcomes
-- materialized: table (read by several marts; computed once per build)
-- incremental: day_connection
-- day is NULL for runs without a start time and for tasks whose run row is missing: they
-- still count in the connection's totals, never on a day.
with runs as (
    select * from stg_runs
),

tasks as (
    select * from stg_task_outcomes
),

run_totals as (
    select
        run_day as day,
        connection_id,
        count(*) filter (where is_completed) as completed_runs,
        count(*) filter (where is_failed) as failed_runs,
        count(*) filter (where is_partial) as partial_runs
    from runs
    group by run_day, connection_id
),

-- run_id breaks ties between runs starting at the same instant, so the result is stable
latest_runs as (
    select
        run_day as day,
        connection_id,
        run_start_time as last_run_start,
        run_id as last_run_id,
        run_result as last_run_result
    from runs
    qualify row_number() over (
        partition by run_day, connection_id
        order by run_start_time desc nulls last, run_id desc
    ) = 1
),

-- tasks are counted on the day their run started, not the day they ran
task_totals as (
    select
        run_day as day,
        connection_id,
        count(*) filter (where is_completed) as completed_tasks,
        count(*) filter (where is_failed) as failed_tasks
    from tasks
    group by run_day, connection_id
),

day_connections as (
    select
        day,
        connection_id
    from run_totals
    union
    select
        day,
        connection_id
    from task_totals
),

final as (
    select
        day_connections.day,
        day_connections.connection_id,
        coalesce(run_totals.completed_runs, 0) as completed_runs,
        coalesce(run_totals.failed_runs, 0) as failed_runs,
        coalesce(run_totals.partial_runs, 0) as partial_runs,
        coalesce(task_totals.completed_tasks, 0) as completed_tasks,
        coalesce(task_totals.failed_tasks, 0) as failed_tasks,
        latest_runs.last_run_start,
        latest_runs.last_run_id,
        latest_runs.last_run_result
    from day_connections
    left join run_totals
        on day_connections.day is not distinct from run_totals.day
        and day_connections.connection_id = run_totals.connection_id
    left join task_totals
        on day_connections.day is not distinct from task_totals.day
        and day_connections.connection_id = task_totals.connection_id
    left join latest_runs
        on day_connections.day is not distinct from latest_runs.day
        and day_connections.connection_id = latest_runs.connection_id
)

select * from final
