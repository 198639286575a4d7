-- grain: one row per stored version of a run (connection_id, run_id, version)
-- depends_on: stg_run_versions
-- incremental: run
-- A version is valid from its first fetch until the next version's first fetch; how long a
-- run sat queued or executing is known only as finely as the collections saw it.
with versions as (
    select * from stg_run_versions
),

numbered as (
    select
        connection_id,
        run_id,
        row_number() over run_versions as version,
        run_state as state,
        run_result as result,
        fetched_at as valid_from,
        lead(fetched_at) over run_versions as valid_to
    from versions
    -- payload_hash orders versions first fetched at the same instant, so numbering is stable
    window run_versions as (
        partition by connection_id, run_id
        order by fetched_at, payload_hash
    )
)

select * from numbered
order by connection_id, run_id, version
