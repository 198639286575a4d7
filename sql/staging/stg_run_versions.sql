-- grain: one row per stored version of a run (connection_id, run_id, payload_hash)
-- depends_on: raw_runs
with source as (
    select * from raw_runs
),

-- both fields in one extraction: each extraction parses the whole payload
parsed as (
    select
        connection_id,
        run_id,
        payload_hash,
        fetched_at,
        json_extract_string(payload, ['$.state', '$.result']) as fields
    from source
),

renamed as (
    select
        connection_id,
        run_id,
        payload_hash,
        fetched_at,
        fields[1] as run_state,
        -- spelled as the runs table stores it (CONTRACT: Cancelled is stored as Canceled)
        replace(fields[2], 'Cancelled', 'Canceled') as run_result
    from parsed
)

select * from renamed
