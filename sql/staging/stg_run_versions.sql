-- grain: one row per stored version of a run (connection_id, run_id, payload_hash)
-- depends_on: raw_runs
with source as (
    select * from raw_runs
),

renamed as (
    select
        connection_id,
        run_id,
        payload_hash,
        fetched_at,
        json_extract_string(payload, '$.state') as run_state,
        -- spelled as the runs table stores it (CONTRACT: Cancelled is stored as Canceled)
        replace(json_extract_string(payload, '$.result'), 'Cancelled', 'Canceled') as run_result
    from source
)

select * from renamed
