"""raw (first fetch of each distinct version) and latest (the version loaded) per batch.

Checked against a plain reference over any mix of repeated fetches, fetch times in any
time zone (or none), and runs that are quarantined, so the shortcut for the usual batch
(every run fetched once and loaded) and the general path must both agree with it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.transform.flatten import FetchedRun, flatten_runs, payload_hash
from tests.transform.builders import run

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8)), None]


def as_utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def payload(run_id: str, variant: int) -> dict[str, Any]:
    p = run(run_id)
    if variant == 1:
        p["state"] = "Executing"
    if variant == 2:
        p["startDateTime"] = "not a time"  # quarantined
    return p


fetches = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.integers(0, 2),
        st.integers(0, 3),
        st.sampled_from(ZONES),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fetches)
def test_raw_and_latest_match_a_plain_reference(picks: list[tuple[str, int, int, Any]]) -> None:
    inputs = []
    for rid, variant, minutes, zone in picks:
        at = (T0 + timedelta(minutes=minutes)).astimezone(zone or UTC)
        fetched = at.replace(tzinfo=None) if zone is None else at
        inputs.append(FetchedRun("conn", payload(rid, variant), fetched))
    batch = flatten_runs(inputs)

    latest: dict[str, tuple[datetime, dict[str, Any]]] = {}
    for r in inputs:
        at = as_utc(r.fetched_at)
        if r.payload["id"] not in latest or at >= latest[r.payload["id"]][0]:
            latest[r.payload["id"]] = (at, r.payload)
    bad = {
        (rid, payload_hash(p))
        for rid, (_, p) in latest.items()
        if p["startDateTime"] == "not a time"
    }
    loaded = {rid: v for rid, v in latest.items() if (rid, payload_hash(v[1])) not in bad}
    first: dict[tuple[str, str], datetime] = {}
    for r in inputs:
        key = (r.payload["id"], payload_hash(r.payload))
        if key not in bad:
            first[key] = min(first.get(key, as_utc(r.fetched_at)), as_utc(r.fetched_at))

    raw_rows = {
        (x["run_id"], x["payload_hash"]): (x["fetched_at"], x["connection_id"], x["state"])
        for x in batch.raw.to_pylist()
    }
    assert batch.raw.num_rows == len(raw_rows)
    assert {k: v[0] for k, v in raw_rows.items()} == first
    assert {v[1] for v in raw_rows.values()} <= {"conn"}
    got_latest = {
        x["run_id"]: (x["fetched_at"], x["payload_hash"], x["state"])
        for x in batch.latest.to_pylist()
    }
    assert got_latest == {rid: (at, payload_hash(p), p["state"]) for rid, (at, p) in loaded.items()}
    assert sorted(batch.tables["runs"]["run_id"].to_pylist()) == sorted(loaded)
    assert batch.quarantine.num_rows == len(bad)


def test_the_usual_batch_keeps_run_order_in_raw_and_latest() -> None:
    inputs = [FetchedRun("conn", run(f"r{i}"), T0) for i in (3, 1, 2)]
    batch = flatten_runs(inputs)
    assert batch.raw["run_id"].to_pylist() == ["r3", "r1", "r2"]
    assert batch.latest["run_id"].to_pylist() == ["r3", "r1", "r2"]
    assert batch.raw.schema.field("payload").type == "string"
    batch.raw.validate(full=True)
