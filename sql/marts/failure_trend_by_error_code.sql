-- grain: one row per error_code with a failed task in the 35 UTC days ending at as_of_day
-- depends_on: int_daily_dimension, int_daily_connection
-- as_of_day is the latest day on which a run started. Recent: as_of_day-6..as_of_day;
-- prior: as_of_day-34..as_of_day-7. Codes are grouped as in failure_rate_by_error_code.
with daily_dimension as (
    select * from int_daily_dimension
    where dimension = 'error_code'
),

daily_connection as (
    select * from int_daily_connection
    where day is not null
),

as_of as (
    select max(day) as as_of_day
    from daily_connection
    where last_run_id is not null
),

windowed_days as (
    select
        daily_connection.day,
        daily_connection.completed_tasks,
        as_of.as_of_day,
        daily_connection.day >= as_of.as_of_day - 6 as is_recent
    from daily_connection
    cross join as_of
    where daily_connection.day between as_of.as_of_day - 34 and as_of.as_of_day
),

completed_totals as (
    select
        coalesce(sum(completed_tasks) filter (where is_recent), 0) as recent_completed_tasks,
        coalesce(sum(completed_tasks) filter (where not is_recent), 0) as prior_completed_tasks
    from windowed_days
),

by_code as (
    select
        daily_dimension.value as error_code,
        as_of.as_of_day,
        coalesce(
            sum(daily_dimension.failed_tasks)
            filter (where daily_dimension.day >= as_of.as_of_day - 6),
            0
        ) as recent_failed_tasks,
        coalesce(
            sum(daily_dimension.failed_tasks)
            filter (where daily_dimension.day < as_of.as_of_day - 6),
            0
        ) as prior_failed_tasks
    from daily_dimension
    cross join as_of
    where daily_dimension.day between as_of.as_of_day - 34 and as_of.as_of_day
    group by daily_dimension.value, as_of.as_of_day
    having sum(daily_dimension.failed_tasks) > 0
),

rates as (
    select
        by_code.error_code,
        by_code.as_of_day,
        cast(by_code.recent_failed_tasks as bigint) as recent_failed_tasks,
        cast(completed_totals.recent_completed_tasks as bigint) as recent_completed_tasks,
        cast(by_code.recent_failed_tasks as double)
        / nullif(completed_totals.recent_completed_tasks, 0) as recent_failure_rate,
        wilson_low(by_code.recent_failed_tasks, completed_totals.recent_completed_tasks)
            as recent_failure_rate_low,
        wilson_high(by_code.recent_failed_tasks, completed_totals.recent_completed_tasks)
            as recent_failure_rate_high,
        cast(by_code.prior_failed_tasks as bigint) as prior_failed_tasks,
        cast(completed_totals.prior_completed_tasks as bigint) as prior_completed_tasks,
        cast(by_code.prior_failed_tasks as double)
        / nullif(completed_totals.prior_completed_tasks, 0) as prior_failure_rate,
        wilson_low(by_code.prior_failed_tasks, completed_totals.prior_completed_tasks)
            as prior_failure_rate_low,
        wilson_high(by_code.prior_failed_tasks, completed_totals.prior_completed_tasks)
            as prior_failure_rate_high
    from by_code
    cross join completed_totals
),

final as (
    select
        *,
        case
            when prior_failed_tasks = 0 then 'new'
            when recent_failure_rate_low > prior_failure_rate_high then 'rising'
            when recent_failure_rate_high < prior_failure_rate_low then 'falling'
            else 'steady'
        end as trend
    from rates
)

select * from final
order by
    case trend when 'new' then 0 when 'rising' then 1 when 'steady' then 2 else 3 end,
    recent_failed_tasks desc,
    error_code asc
