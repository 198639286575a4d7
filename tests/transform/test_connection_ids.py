"""The flattener compares a run's connectionId with the connection it was fetched for as
the platform does: GUIDs case-insensitively (issue 22)."""

from __future__ import annotations

from pipeline.transform.flatten import FetchedRun, flatten_runs
from tests.transform.builders import T0, run

UPPER = "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE"


def test_a_run_carrying_its_connection_id_in_another_case_loads_under_the_fetched_id() -> None:
    batch = flatten_runs([FetchedRun(UPPER, run("r1", connection_id=UPPER.lower()), T0)])
    assert batch.quarantine.num_rows == 0
    assert batch.tables["runs"].column("connection_id").to_pylist() == [UPPER]


def test_a_run_of_another_connection_is_still_quarantined() -> None:
    other = "11111111-2222-3333-4444-555555555555"
    batch = flatten_runs([FetchedRun(UPPER, run("r1", connection_id=other), T0)])
    assert batch.run_count == 0 and batch.quarantine.num_rows == 1
    assert "connectionId" in batch.quarantine.column("reason")[0].as_py()
