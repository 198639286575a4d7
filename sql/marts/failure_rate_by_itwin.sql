-- grain: one row per iTwin with a connection that has runs (itwin_id; NULL when unknown)
-- depends_on: failure_rate_by_connection
with by_connection as (
    select * from failure_rate_by_connection
),

totals as (
    select
        itwin_id,
        count(distinct imodel_id) as imodels,
        count(*) as connections,
        cast(sum(completed_runs) as bigint) as completed_runs,
        cast(sum(failed_runs) as bigint) as failed_runs,
        cast(sum(completed_tasks) as bigint) as completed_tasks,
        cast(sum(failed_tasks) as bigint) as failed_tasks,
        max(last_run_start) as last_run_start
    from by_connection
    group by itwin_id
),

final as (
    select
        itwin_id,
        imodels,
        connections,
        completed_runs,
        failed_runs,
        cast(failed_runs as double) / nullif(completed_runs, 0) as run_failure_rate,
        wilson_low(failed_runs, completed_runs) as run_failure_rate_low,
        wilson_high(failed_runs, completed_runs) as run_failure_rate_high,
        completed_tasks,
        failed_tasks,
        cast(failed_tasks as double) / nullif(completed_tasks, 0) as task_failure_rate,
        wilson_low(failed_tasks, completed_tasks) as task_failure_rate_low,
        wilson_high(failed_tasks, completed_tasks) as task_failure_rate_high,
        last_run_start
    from totals
)

select * from final
order by failed_tasks desc, itwin_id asc nulls last
