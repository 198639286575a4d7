-- grain: one row per connection that has runs (connection_id)
-- depends_on: int_daily_connection, stg_connections
with daily_connection as (
    select * from int_daily_connection
),

connections as (
    select * from stg_connections
),

totals as (
    select
        connection_id,
        cast(sum(completed_runs) as bigint) as completed_runs,
        cast(sum(failed_runs) as bigint) as failed_runs,
        cast(sum(partial_runs) as bigint) as partial_runs,
        cast(sum(completed_tasks) as bigint) as completed_tasks,
        cast(sum(failed_tasks) as bigint) as failed_tasks
    from daily_connection
    group by connection_id
    -- a connection whose tasks have no run row has no runs: it gets no row
    having count(last_run_id) > 0
),

-- the latest of each day's latest runs; run_id breaks ties between equal start times
latest_runs as (
    select
        connection_id,
        last_run_start,
        last_run_result
    from daily_connection
    where last_run_id is not null
    qualify row_number() over (
        partition by connection_id
        order by last_run_start desc nulls last, last_run_id desc
    ) = 1
),

final as (
    select
        totals.connection_id,
        connections.display_name,
        connections.imodel_id,
        connections.itwin_id,
        totals.completed_runs,
        totals.failed_runs,
        totals.partial_runs,
        cast(totals.failed_runs as double) / nullif(totals.completed_runs, 0) as run_failure_rate,
        wilson_low(totals.failed_runs, totals.completed_runs) as run_failure_rate_low,
        wilson_high(totals.failed_runs, totals.completed_runs) as run_failure_rate_high,
        totals.completed_tasks,
        totals.failed_tasks,
        cast(totals.failed_tasks as double) / nullif(totals.completed_tasks, 0)
            as task_failure_rate,
        wilson_low(totals.failed_tasks, totals.completed_tasks) as task_failure_rate_low,
        wilson_high(totals.failed_tasks, totals.completed_tasks) as task_failure_rate_high,
        latest_runs.last_run_start,
        latest_runs.last_run_result
    from totals
    inner join latest_runs on totals.connection_id = latest_runs.connection_id
    left join connections on totals.connection_id = connections.connection_id
)

select * from final
order by connection_id
