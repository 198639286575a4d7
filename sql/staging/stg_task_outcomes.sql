-- grain: one row per task (connection_id, run_id, job_id, task_id), with its run's day
-- depends_on: tasks, stg_runs
-- What counting tasks needs, without their error rows: the daily totals read this view,
-- so they join no error row; stg_tasks adds the error details to it.
with tasks as (
    select * from tasks
),

runs as (
    select * from stg_runs
),

joined as (
    select
        tasks.connection_id,
        tasks.run_id,
        tasks.job_id,
        tasks.task_id,
        tasks.state as task_state,
        tasks.result as task_result,
        coalesce(tasks.state = 'Completed', false) as is_completed,
        coalesce(tasks.state = 'Completed' and tasks.result in ('Error', 'TimedOut'), false)
            as is_failed,
        runs.run_start_time,
        runs.run_day
    from tasks
    -- left join: a task whose run row is missing still counts towards the task totals
    left join runs
        on tasks.connection_id = runs.connection_id
        and tasks.run_id = runs.run_id
)

select * from joined
