-- grain: one row per run (connection_id, run_id)
-- depends_on: runs
with source as (
    select * from runs
),

renamed as (
    select
        connection_id,
        run_id,
        start_time as run_start_time,
        end_time as run_end_time,
        state as run_state,
        result as run_result,
        duration_s,
        -- the day is taken in UTC explicitly so it does not move with the session TimeZone
        cast(timezone('UTC', start_time) as date) as run_day,
        coalesce(state = 'Completed', false) as is_completed,
        coalesce(state = 'Completed' and result in ('Error', 'TimedOut'), false) as is_failed,
        coalesce(state = 'Completed' and result = 'PartialSuccess', false) as is_partial
    from source
)

select * from renamed
