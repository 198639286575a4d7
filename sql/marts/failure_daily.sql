-- grain: one row per UTC day on which at least one run started (day)
-- depends_on: int_daily_connection
with daily_connection as (
    select * from int_daily_connection
    where day is not null
),

-- tasks are counted on the day their run started, not the day they ran
daily as (
    select
        day,
        cast(sum(completed_runs) as bigint) as completed_runs,
        cast(sum(failed_runs) as bigint) as failed_runs,
        cast(sum(completed_tasks) as bigint) as completed_tasks,
        cast(sum(failed_tasks) as bigint) as failed_tasks
    from daily_connection
    group by day
    having count(last_run_id) > 0
),

-- a range frame over dates: the 28 calendar days before d, so a day without runs adds zero
with_baseline as (
    select
        *,
        coalesce(sum(completed_tasks) over baseline_days, 0) as baseline_completed_tasks,
        coalesce(sum(failed_tasks) over baseline_days, 0) as baseline_failed_tasks
    from daily
    window baseline_days as (
        order by day
        range between interval 28 day preceding and interval 1 day preceding
    )
),

rates as (
    select
        day,
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
        cast(baseline_completed_tasks as bigint) as baseline_completed_tasks,
        cast(baseline_failed_tasks as bigint) as baseline_failed_tasks,
        cast(baseline_failed_tasks as double) / nullif(baseline_completed_tasks, 0)
            as baseline_task_failure_rate,
        wilson_low(baseline_failed_tasks, baseline_completed_tasks)
            as baseline_task_failure_rate_low,
        wilson_high(baseline_failed_tasks, baseline_completed_tasks)
            as baseline_task_failure_rate_high
    from with_baseline
),

final as (
    select
        *,
        coalesce(task_failure_rate_low > baseline_task_failure_rate_high, false) as is_spike
    from rates
)

select * from final
order by day
