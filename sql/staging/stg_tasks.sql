-- grain: one row per task (connection_id, run_id, job_id, task_id), with its run and its error row
-- depends_on: stg_task_outcomes, task_errors, stg_error_catalog
-- A view: incremental builds read only the changed days' tasks through it, so no
-- build copies every task.
with tasks as (
    select * from stg_task_outcomes
),

task_errors as (
    select * from task_errors
),

error_catalog as (
    select * from stg_error_catalog
),

joined as (
    select
        tasks.connection_id,
        tasks.run_id,
        tasks.job_id,
        tasks.task_id,
        tasks.task_state,
        tasks.task_result,
        tasks.is_completed,
        tasks.is_failed,
        -- error_occurrences count tasks that have an error row, whatever its values
        task_errors.task_id is not null as has_error_row,
        -- a missing error row and a NULL value are reported alike, as (unspecified)
        coalesce(task_errors.error_code, '(unspecified)') as error_code,
        coalesce(task_errors.phase, '(unspecified)') as phase,
        coalesce(task_errors.system, '(unspecified)') as system,
        coalesce(task_errors.description_key, '(unspecified)') as description_key,
        -- the API's canUserFix wins; the catalogue entry decides only when the API is silent
        case coalesce(task_errors.can_user_fix, error_catalog.can_user_fix)
            when true then 'user_fixable'
            when false then 'not_user_fixable'
            else '(unspecified)'
        end as fixability,
        task_errors.message as error_message,
        tasks.run_start_time,
        tasks.run_day
    from tasks
    left join task_errors
        on tasks.connection_id = task_errors.connection_id
        and tasks.run_id = task_errors.run_id
        and tasks.job_id = task_errors.job_id
        and tasks.task_id = task_errors.task_id
    left join error_catalog
        on task_errors.description_key = error_catalog.description_key
)

select * from joined
