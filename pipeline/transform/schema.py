"""The four core warehouse tables, written once as Arrow schemas.

Everything else (DuckDB DDL, the flattener's column builders, the DuckDB-native
reference flattening in benchmarks) derives from these definitions.
"""

from __future__ import annotations

import pyarrow as pa

UTC_MICROS = pa.timestamp("us", tz="UTC")

# Columns whose Arrow type is a string but whose warehouse type is DuckDB JSON.
JSON_COLUMNS = frozenset({"extra"})

RUNS = pa.schema(
    [
        pa.field("connection_id", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("start_time", UTC_MICROS),
        pa.field("end_time", UTC_MICROS),
        pa.field("state", pa.string()),
        pa.field("result", pa.string()),
        pa.field("duration_s", pa.float64()),
        pa.field("extra", pa.string()),
    ]
)

JOBS = pa.schema(
    [
        pa.field("connection_id", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("job_id", pa.string(), nullable=False),
        pa.field("start_time", UTC_MICROS),
        pa.field("end_time", UTC_MICROS),
        pa.field("state", pa.string()),
        pa.field("result", pa.string()),
        pa.field("connector_type", pa.string()),
        pa.field("extra", pa.string()),
    ]
)

TASKS = pa.schema(
    [
        pa.field("connection_id", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("job_id", pa.string(), nullable=False),
        pa.field("task_id", pa.string(), nullable=False),
        pa.field("start_time", UTC_MICROS),
        pa.field("end_time", UTC_MICROS),
        pa.field("retry_attempts", pa.int64()),
        pa.field("state", pa.string()),
        pa.field("result", pa.string()),
        pa.field("export_output_file_id", pa.string()),
        pa.field("extra", pa.string()),
    ]
)

TASK_ERRORS = pa.schema(
    [
        pa.field("connection_id", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("job_id", pa.string(), nullable=False),
        pa.field("task_id", pa.string(), nullable=False),
        pa.field("error_code", pa.string()),
        pa.field("message", pa.string()),
        pa.field("details", pa.string()),
        pa.field("bridge_exit_code", pa.int64()),
        pa.field("system", pa.string()),
        pa.field("phase", pa.string()),
        pa.field("category", pa.string()),
        pa.field("description_key", pa.string()),
        pa.field("description", pa.string()),
        pa.field("kb_article_link", pa.string()),
        pa.field("can_user_fix", pa.bool_()),
        pa.field("extra", pa.string()),
    ]
)

# Table name -> (schema, key columns). Order matters: parents before children.
CORE_TABLES: dict[str, tuple[pa.Schema, tuple[str, ...]]] = {
    "runs": (RUNS, ("connection_id", "run_id")),
    "jobs": (JOBS, ("connection_id", "run_id", "job_id")),
    "tasks": (TASKS, ("connection_id", "run_id", "job_id", "task_id")),
    "task_errors": (TASK_ERRORS, ("connection_id", "run_id", "job_id", "task_id")),
}

# JSON field name in the API -> column name, per entity. Fields not listed go to `extra`.
RUN_FIELDS = {
    "id": "run_id",
    "startDateTime": "start_time",
    "endDateTime": "end_time",
    "state": "state",
    "result": "result",
}
JOB_FIELDS = {
    "id": "job_id",
    "startDateTime": "start_time",
    "endDateTime": "end_time",
    "state": "state",
    "result": "result",
    "connectorType": "connector_type",
}
TASK_FIELDS = {
    "id": "task_id",
    "startDateTime": "start_time",
    "endDateTime": "end_time",
    "retryAttempts": "retry_attempts",
    "state": "state",
    "result": "result",
    "exportOutputFileId": "export_output_file_id",
}
ERROR_FIELDS = {
    "errorCode": "error_code",
    "message": "message",
    "details": "details",
    "bridgeExitCode": "bridge_exit_code",
    "system": "system",
    "phase": "phase",
    "category": "category",
    "descriptionKey": "description_key",
    "description": "description",
    "kbArticleLink": "kb_article_link",
    "canUserFix": "can_user_fix",
}
# Core table -> its entity's fields (API name -> column).
API_FIELDS = {
    "runs": RUN_FIELDS,
    "jobs": JOB_FIELDS,
    "tasks": TASK_FIELDS,
    "task_errors": ERROR_FIELDS,
}

# Bookkeeping tables beside the core ones, written once here like the core schemas.
# raw_runs: every distinct version of every run, as canonical JSON (keys sorted,
# strings byte-exact), with when it was first fetched.
RAW_RUNS = pa.schema(
    [
        pa.field("connection_id", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("payload_hash", pa.string(), nullable=False),
        pa.field("payload", pa.string(), nullable=False),
        pa.field("fetched_at", UTC_MICROS, nullable=False),
        pa.field("state", pa.string()),
    ]
)

# raw_latest: which raw version the core tables currently hold, per run. It makes
# "new / changed / unchanged" and rebuild-from-raw exact even if a run ever reverts
# to an earlier version.
RAW_LATEST = pa.schema(
    [
        pa.field("connection_id", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("payload_hash", pa.string(), nullable=False),
        pa.field("fetched_at", UTC_MICROS, nullable=False),
        pa.field("state", pa.string()),
    ]
)

# quarantine: runs (or whole files) whose shape could not be read, with the reason.
QUARANTINE = pa.schema(
    [
        pa.field("connection_id", pa.string()),
        pa.field("run_id", pa.string()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("payload", pa.string()),
        pa.field("payload_hash", pa.string(), nullable=False),
        pa.field("fetched_at", UTC_MICROS, nullable=False),
        pa.field("source", pa.string()),
    ]
)

COLLECTION_LOG = pa.schema(
    [
        pa.field("collection_id", pa.string(), nullable=False),
        pa.field("connection_id", pa.string(), nullable=False),
        pa.field("started_at", UTC_MICROS, nullable=False),
        pa.field("ended_at", UTC_MICROS, nullable=False),
        pa.field("outcome", pa.string(), nullable=False),
        pa.field("http_status", pa.int64()),
        pa.field("error_code", pa.string()),
        pa.field("error_message", pa.string()),
        pa.field("pages", pa.int64()),
        pa.field("requests", pa.int64()),
        pa.field("retries", pa.int64()),
        pa.field("throttled_429", pa.int64()),
        pa.field("runs_new", pa.int64()),
        pa.field("runs_changed", pa.int64()),
        pa.field("runs_unchanged", pa.int64()),
        pa.field("runs_quarantined", pa.int64()),
        # runs whose object repeated a key (loaded with the last value; raw text kept
        # in quarantine with source 'duplicate keys')
        pa.field("duplicate_keys", pa.int64()),
    ]
)

# When each API request of the last hour or so started, so the hourly budget counts
# earlier collections' requests too.
API_REQUESTS = pa.schema([pa.field("requested_at", UTC_MICROS, nullable=False)])

FULL_PASSES = pa.schema(
    [
        pa.field("connection_id", pa.string(), nullable=False),
        pa.field("last_full_pass", UTC_MICROS, nullable=False),
    ]
)

# Where an unfinished full pass of a connection's list stopped: the next link after the
# last page loaded, so the next collection continues the pass instead of starting over.
RESUME_POINTS = pa.schema(
    [
        pa.field("connection_id", pa.string(), nullable=False),
        pa.field("next_href", pa.string(), nullable=False),
        pa.field("pass_started_at", UTC_MICROS, nullable=False),
        pa.field("saved_at", UTC_MICROS, nullable=False),
    ]
)

# Every connection configured, discovered or with runs; details NULL until the API gave them.
CONNECTIONS = pa.schema(
    [
        pa.field("connection_id", pa.string(), nullable=False),
        pa.field("display_name", pa.string()),
        pa.field("imodel_id", pa.string()),
        pa.field("itwin_id", pa.string()),
        pa.field("authentication_type", pa.string()),
        pa.field("last_run_id", pa.string()),
        pa.field("fetched_at", UTC_MICROS),
        pa.field("extra", pa.string()),
    ]
)

# Bentley's error catalogue, replaced from the shipped snapshot by every build.
ERROR_CATALOG = pa.schema(
    [
        pa.field("catalog", pa.string(), nullable=False),
        pa.field("description_key", pa.string(), nullable=False),
        pa.field("description", pa.string()),
        pa.field("category", pa.string()),
        pa.field("can_user_fix", pa.bool_()),
        pa.field("kb_article_link", pa.string()),
    ]
)

# Table name -> (schema, key). An empty key means rows are only ever appended.
BOOKKEEPING_TABLES: dict[str, tuple[pa.Schema, tuple[str, ...]]] = {
    "raw_runs": (RAW_RUNS, ("connection_id", "run_id", "payload_hash")),
    "raw_latest": (RAW_LATEST, ("connection_id", "run_id")),
    "quarantine": (QUARANTINE, ()),
    "collection_log": (COLLECTION_LOG, ()),
    "full_passes": (FULL_PASSES, ("connection_id",)),
    "resume_points": (RESUME_POINTS, ("connection_id",)),
    "api_requests": (API_REQUESTS, ()),
    "connections": (CONNECTIONS, ("connection_id",)),
    "error_catalog": (ERROR_CATALOG, ("catalog", "description_key")),
}
