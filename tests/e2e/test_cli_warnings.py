"""The CLI summary shows what Dagster's checks found (issue 22): runs ending before they
start, undocumented states, and every failed check of a collection."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.server import SimulatorServer
from tests.support import sim_env
from tests.transform.builders import run


@pytest.mark.long
def test_a_load_with_suspect_runs_names_them_and_the_failed_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in list(os.environ):
        if key.startswith("ITWIN_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("ITWIN_RUNS_DATA_DIR", str(tmp_path / "data"))
    backwards = run("r-back")
    backwards["startDateTime"], backwards["endDateTime"] = (
        "2026-01-02T10:00:00Z",
        "2026-01-02T09:00:00Z",
    )
    page = tmp_path / "page.json"
    page.write_text(
        json.dumps({"runs": [run("r-fine"), backwards, run("r-low", state="completed")]})
    )
    assert main(["load", str(page), "--connection", "c1"]) == 0
    capsys.readouterr()
    # A collection runs the checks on the tables; they read every connection's runs.
    config = SimulatorConfig(seed=33, connections=1, imodels=0, runs_per_connection=10)
    with SimulatorServer(config) as sim:
        for key, value in sim_env(sim, tmp_path / "data").items():
            monkeypatch.setenv(key, value)
        assert main(["collect"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "WARNING: 1 runs end before they start (negative duration): c1/r-back" in out
    assert any(ln.startswith("WARNING: 1 runs have a state or result") for ln in out)
    checks = out[out.index(next(ln for ln in out if ln.startswith("failed checks"))) :]
    assert any("runs no_negative_durations (WARN): 1 runs end before" in ln for ln in checks)
    assert any("runs runs_in_documented_states (WARN)" in ln and "c1/r-low" in ln for ln in checks)


def test_a_collection_stopped_by_the_hourly_cap_exits_1_naming_each_stopped_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in list(os.environ):
        if key.startswith("ITWIN_"):
            monkeypatch.delenv(key)
    config = SimulatorConfig(seed=34, connections=3, imodels=0, runs_per_connection=40, page_cap=10)
    with SimulatorServer(config) as sim:
        for key, value in sim_env(sim, tmp_path / "data").items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("ITWIN_RATE_LIMIT_PER_HOUR", "6")
        assert main(["collect"]) == 1
    out = capsys.readouterr().out.splitlines()
    header = next(ln for ln in out if ln.startswith("STOPPED connections"))
    stopped = out[out.index(header) + 1 :]
    stopped = stopped[: next(i for i, ln in enumerate(stopped) if not ln.startswith("  "))]
    assert stopped and all(
        "stopped: hourly budget, the next request would wait" in ln and " s (" in ln
        for ln in stopped
    )
