-- grain: one row per iModel with a connection that has runs (imodel_id, itwin_id)
-- depends_on: failure_rate_by_connection
-- Connections with no details roll up under a NULL imodel_id (and itwin_id when unknown too).
with by_connection as (
    select * from failure_rate_by_connection
),

totals as (
    select
        imodel_id,
        itwin_id,
        count(*) as connections,
        cast(sum(completed_runs) as bigint) as completed_runs,
        cast(sum(failed_runs) as bigint) as failed_runs,
        cast(sum(completed_tasks) as bigint) as completed_tasks,
        cast(sum(failed_tasks) as bigint) as failed_tasks,
        max(last_run_start) as last_run_start
    from by_connection
    group by imodel_id, itwin_id
),

final as (
    select
        imodel_id,
        itwin_id,
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
order by failed_tasks desc, imodel_id asc nulls last, itwin_id asc nulls last
