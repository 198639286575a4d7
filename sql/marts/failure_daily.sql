-- grain: one row per UTC day on which at least one run started (day)
-- depends_on: stg_runs, stg_tasks
with runs as (
    select * from stg_runs
    where run_day is not null
),

tasks as (
    select * from stg_tasks
    where run_day is not null
),

run_totals as (
    select
        run_day as day,
        count(*) filter (where is_completed) as completed_runs,
        count(*) filter (where is_failed) as failed_runs
    from runs
    group by run_day
),

-- tasks are counted on the day their run started, not the day they ran
task_totals as (
    select
        run_day as day,
        count(*) filter (where is_completed) as completed_tasks,
        count(*) filter (where is_failed) as failed_tasks
    from tasks
    group by run_day
),

final as (
    select
        run_totals.day,
        run_totals.completed_runs,
        run_totals.failed_runs,
        cast(run_totals.failed_runs as double) / nullif(run_totals.completed_runs, 0)
            as run_failure_rate,
        coalesce(task_totals.completed_tasks, 0) as completed_tasks,
        coalesce(task_totals.failed_tasks, 0) as failed_tasks,
        (
            cast(coalesce(task_totals.failed_tasks, 0) as double)
            / nullif(task_totals.completed_tasks, 0)
        ) as task_failure_rate
    from run_totals
    left join task_totals on run_totals.day = task_totals.day
)

select * from final
order by day
