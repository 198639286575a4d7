-- grain: one row per UTC day on which a completed run with a duration started (day)
-- depends_on: stg_runs
-- incremental: day
-- Quantiles need each run's duration, so this reads staging rather than the daily layer.
with timed_runs as (
    select * from stg_runs
    where is_completed and duration_s is not null and run_day is not null
),

final as (
    select
        run_day as day,
        count(*) as completed_runs,
        quantile_cont(duration_s, 0.5) as p50_duration_s,
        quantile_cont(duration_s, 0.9) as p90_duration_s,
        quantile_cont(duration_s, 0.95) as p95_duration_s,
        max(duration_s) as max_duration_s
    from timed_runs
    group by run_day
)

select * from final
order by day
