-- grain: one row per connection that has runs (connection_id)
-- depends_on: stg_runs, stg_tasks
with runs as (
    select * from stg_runs
),

tasks as (
    select * from stg_tasks
),

run_totals as (
    select
        connection_id,
        count(*) filter (where is_completed) as completed_runs,
        count(*) filter (where is_failed) as failed_runs,
        count(*) filter (where is_partial) as partial_runs
    from runs
    group by connection_id
),

-- run_id breaks ties between runs starting at the same instant, so the result is stable
latest_runs as (
    select
        connection_id,
        run_start_time as last_run_start,
        run_result as last_run_result
    from runs
    qualify row_number() over (
        partition by connection_id
        order by run_start_time desc nulls last, run_id desc
    ) = 1
),

task_totals as (
    select
        connection_id,
        count(*) filter (where is_completed) as completed_tasks,
        count(*) filter (where is_failed) as failed_tasks
    from tasks
    group by connection_id
),

final as (
    select
        run_totals.connection_id,
        run_totals.completed_runs,
        run_totals.failed_runs,
        run_totals.partial_runs,
        cast(run_totals.failed_runs as double) / nullif(run_totals.completed_runs, 0)
            as run_failure_rate,
        coalesce(task_totals.completed_tasks, 0) as completed_tasks,
        coalesce(task_totals.failed_tasks, 0) as failed_tasks,
        (
            cast(coalesce(task_totals.failed_tasks, 0) as double)
            / nullif(task_totals.completed_tasks, 0)
        ) as task_failure_rate,
        latest_runs.last_run_start,
        latest_runs.last_run_result
    from run_totals
    inner join latest_runs on run_totals.connection_id = latest_runs.connection_id
    left join task_totals on run_totals.connection_id = task_totals.connection_id
)

select * from final
order by connection_id
