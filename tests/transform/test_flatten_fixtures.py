"""The published API examples flatten to exactly the documented column values."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow as pa

from pipeline.transform.flatten import FetchedRun, flatten_runs, payload_hash
from pipeline.transform.schema import CORE_TABLES
from tests.transform.builders import error, job, run, task

FIXTURES = Path(__file__).parents[1] / "fixtures"
NOW = datetime(2024, 5, 1, tzinfo=UTC)
LIST_CONNECTION = "VRZHoBhrnkGrAev0-_-d_xwvyrzjgaVGka5wU967Q7M"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def rows(batch, table: str) -> list[dict]:
    return batch.tables[table].to_pylist()


def test_single_run_answer_exact_values() -> None:
    payload = fixture("get-run-200.json")["run"]
    batch = flatten_runs([FetchedRun("", payload, NOW)])
    assert batch.quarantine.num_rows == 0
    (r,) = rows(batch, "runs")
    assert r["connection_id"] == "bc38cd8a-fd9f-4abf-9ad7-0c3b3d28720e"  # from the payload
    assert r["start_time"] == datetime(2020, 10, 24, 2, 44, 13, 410966, tzinfo=UTC)  # truncated
    assert r["end_time"] == datetime(2020, 10, 24, 2, 47, 13, 410966, tzinfo=UTC)
    assert r["duration_s"] == 180.0
    assert (r["state"], r["result"], r["extra"]) == ("Completed", "PartialSuccess", None)
    (t,) = rows(batch, "tasks")
    assert t["result"] == "Success" and t["retry_attempts"] == 0
    (e,) = rows(batch, "task_errors")
    assert e["task_id"] == "f5ecbdc8c4f6173004f9f881914a57c5511a362b"
    assert e["job_id"] == "d6ecbdc8c4f6173004f9f881914a57c5511a362b"
    assert e["bridge_exit_code"] == 4294967295
    assert e["can_user_fix"] is False
    assert e["kb_article_link"] == ""
    assert e["phase"] == "internal_server_error"


def test_list_page_takes_connection_from_request() -> None:
    page = fixture("list-runs-200.json")
    batch = flatten_runs([FetchedRun(LIST_CONNECTION, r, NOW) for r in page["runs"]])
    (r,) = rows(batch, "runs")
    assert r["connection_id"] == LIST_CONNECTION
    assert r["start_time"] == datetime(2023, 9, 14, 12, 0, 6, 872756, tzinfo=UTC)
    assert r["duration_s"] == 424.54109  # 12:07:11.413846 - 12:00:06.872756, exact to the us
    (j,) = rows(batch, "jobs")
    assert j["start_time"] == datetime(2023, 9, 14, 12, 0, 9, 801086, tzinfo=UTC)  # 6 digits
    assert j["connector_type"] is None
    (t,) = rows(batch, "tasks")
    assert t["export_output_file_id"] == "fa310a48-d89c-493a-8124-80406ac46f66"
    assert t["end_time"] == datetime(2023, 9, 14, 12, 6, 31, 382001, tzinfo=UTC)
    (e,) = rows(batch, "task_errors")
    assert e["bridge_exit_code"] == -7002 and e["error_code"] == "TAE_BRW_1000"
    assert [e["connection_id"], e["run_id"]] == [LIST_CONNECTION, r["run_id"]]


def test_schemas_are_exact() -> None:
    batch = flatten_runs([FetchedRun("c", fixture("get-run-200.json")["run"], NOW)])
    for name, (schema, _) in CORE_TABLES.items():
        assert batch.tables[name].schema.equals(schema), name


def test_cancelled_is_stored_as_canceled_everywhere() -> None:
    r = run("r1", result="Cancelled", jobs=[job("j", result="Cancelled", tasks=[task("t")])])
    r["jobs"][0]["tasks"][0]["result"] = "Cancelled"
    batch = flatten_runs([FetchedRun("c", r, NOW)])
    for table in ("runs", "jobs", "tasks"):
        assert [x["result"] for x in rows(batch, table)] == ["Canceled"]


def test_unknown_fields_go_to_extra_as_json() -> None:
    r = run("r1", jobs=[job("j", tasks=[task("t", err=error(newField=[1, {"b": None}]))])])
    r["priority"] = 5
    r["jobs"][0]["tasks"][0]["weird"] = {"z": 1, "a": "é"}
    batch = flatten_runs([FetchedRun("c", r, NOW)])
    assert orjson.loads(rows(batch, "runs")[0]["extra"]) == {"priority": 5}
    assert rows(batch, "jobs")[0]["extra"] is None
    assert orjson.loads(rows(batch, "tasks")[0]["extra"]) == {"weird": {"a": "é", "z": 1}}
    assert orjson.loads(rows(batch, "task_errors")[0]["extra"]) == {"newField": [1, {"b": None}]}


def test_missing_and_null_fields_are_null() -> None:
    r = {"id": "r1", "state": None, "jobs": [{"id": "j", "tasks": [{"id": "t", "error": {}}]}]}
    batch = flatten_runs([FetchedRun("c", r, NOW)])
    assert batch.quarantine.num_rows == 0
    (runrow,) = rows(batch, "runs")
    assert runrow["start_time"] is None and runrow["duration_s"] is None
    (e,) = rows(batch, "task_errors")
    assert e["bridge_exit_code"] is None and e["can_user_fix"] is None


def test_offsets_and_truncation() -> None:
    r = run("r1")
    r["startDateTime"] = "2024-01-01T01:00:00.9999999+01:00"
    r["endDateTime"] = "2024-01-01T00:00:01.0000009Z"
    (row,) = rows(flatten_runs([FetchedRun("c", r, NOW)]), "runs")
    assert row["start_time"] == datetime(2024, 1, 1, 0, 0, 0, 999999, tzinfo=UTC)
    assert row["end_time"] == datetime(2024, 1, 1, 0, 0, 1, 0, tzinfo=UTC)
    assert row["duration_s"] == 0.000001


def test_connection_rules() -> None:
    mismatch = FetchedRun("a", run("r1", connection_id="b"), NOW)
    unknown = FetchedRun("", run("r2"), NOW)
    agree = FetchedRun("a", run("r3", connection_id="a"), NOW)
    batch = flatten_runs([mismatch, unknown, agree])
    assert [r["run_id"] for r in rows(batch, "runs")] == ["r3"]
    reasons = {q["run_id"]: q["reason"] for q in batch.quarantine.to_pylist()}
    assert "'b'" in reasons["r1"] and "'a'" in reasons["r1"]
    assert "--connection" in reasons["r2"]


def test_within_batch_the_latest_fetch_wins() -> None:
    old = run("r1", state="Executing", result="Undetermined")
    new = run("r1")
    batch = flatten_runs(
        [FetchedRun("c", new, NOW), FetchedRun("c", old, NOW - timedelta(minutes=1))]
    )
    assert [(r["state"], r["result"]) for r in rows(batch, "runs")] == [("Completed", "Success")]
    assert batch.tables["tasks"].num_rows == 1
    assert batch.raw.num_rows == 2  # both distinct versions are kept as history
    assert batch.latest.column("payload_hash").to_pylist() == [payload_hash(new)]
    # equal fetch times: the later one in the batch wins
    tie = flatten_runs([FetchedRun("c", old, NOW), FetchedRun("c", new, NOW)])
    assert rows(tie, "runs")[0]["state"] == "Completed"


def test_payload_hash_ignores_key_order_and_sees_changes() -> None:
    a = {"id": "x", "state": "Completed", "jobs": []}
    b = {"jobs": [], "state": "Completed", "id": "x"}
    assert payload_hash(a) == payload_hash(b)
    assert payload_hash(a) != payload_hash({**a, "state": "Executing"})
    assert isinstance(payload_hash({1: float("nan"), "s": "\ud800"}), str)  # garbage still hashes


def test_raw_payload_is_canonical_json_with_exact_strings() -> None:
    r = run("r1")
    r["note"] = '\'; DROP TABLE runs; -- "q" 🚀 שלום مرحبا \\ \u0000'
    batch = flatten_runs([FetchedRun("c", r, NOW)])
    (raw,) = batch.raw.to_pylist()
    assert orjson.loads(raw["payload"]) == r
    assert raw["payload_hash"] == payload_hash(r)
    assert isinstance(batch.raw.schema.field("payload").type, type(pa.string()))
