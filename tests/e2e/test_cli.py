"""`itwin-runs` as a user runs it: exit codes, one-line errors and the summary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main, simulator_environment
from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.server import SimulatorServer

CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("ITWIN_")}


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        env={**CLEAN_ENV, **env},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def sim_env(sim: SimulatorServer, data_dir: Path) -> dict[str, str]:
    return {
        **simulator_environment(sim),
        "ITWIN_RATE_LIMIT_PER_MINUTE": "60000",
        "ITWIN_RUNS_DATA_DIR": str(data_dir),
    }


def test_partial_failure_exits_1_and_names_connection_and_code(tmp_path: Path) -> None:
    config = SimulatorConfig(seed=31, connections=3, imodels=1, runs_per_connection=30)
    with SimulatorServer(config) as sim:
        bad = sim.direct_connection_ids[0]
        sim.faults.forbidden_connections.add(bad)
        done = run_cli(["collect"], sim_env(sim, tmp_path))
    assert done.returncode == 1, done.stderr
    assert f"{bad}: HTTP 403, InsufficientPermissions" in done.stdout
    assert "top failure causes" in done.stdout
    assert (tmp_path / "reports" / "report.html").exists()
    assert sim.client_secret not in done.stdout + done.stderr


def test_collect_then_report_then_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    for key in list(os.environ):
        if key.startswith("ITWIN_"):
            monkeypatch.delenv(key)
    config = SimulatorConfig(seed=32, connections=2, imodels=1, runs_per_connection=25)
    with SimulatorServer(config) as sim:
        for key, value in sim_env(sim, tmp_path).items():
            monkeypatch.setenv(key, value)
        assert main(["collect"]) == 0
    out = capsys.readouterr().out
    assert "this collection: 2 connections, 50 new runs" in out
    assert main(["report"]) == 0
    assert "tables: 50 runs" in capsys.readouterr().out

    fixtures = Path(__file__).parents[1] / "fixtures"
    monkeypatch.setenv("ITWIN_RUNS_DATA_DIR", str(tmp_path / "loaded"))
    code = main(
        [
            "load",
            str(fixtures / "list-runs-200.json"),
            str(fixtures / "get-run-200.json"),
            "--connection",
            "conn-from-flag",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "tables: 2 runs" in captured.out
    assert "reading: 2 of 2 files, 2 runs" in captured.err  # progress, plain in a pipe


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        ({"ITWIN_CONNECTION_IDS": "a"}, ["collect"], "no credentials: set ITWIN_ACCESS_TOKEN"),
        ({"ITWIN_ACCESS_TOKEN": "t"}, ["collect"], "no connections configured"),
        ({}, ["--config", "/nonexistent/itwin.yaml", "collect"], "cannot read config file"),
        ({"ITWIN_RUNS_DATA_DIR": "/nonexistent/dir"}, ["report"], "no warehouse at"),
        ({}, ["load", "/nonexistent/page.json"], "no such file or folder"),
    ],
)
def test_configuration_errors_are_one_line_exit_2(
    env: dict[str, str], args: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    for key in list(os.environ):
        if key.startswith("ITWIN_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_malformed_config_file(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("connection_ids: [a\n")
    assert main(["--config", str(cfg), "collect"]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_collect_while_another_process_holds_the_warehouse(tmp_path: Path) -> None:
    """The second writer waits its bounded time, then fails naming the lock holder."""
    import duckdb

    config = SimulatorConfig(seed=33, connections=2, imodels=1, runs_per_connection=10)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
            "print('locked', flush=True); time.sleep(60)",
            str(tmp_path / "warehouse.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        cfg = tmp_path / "itwin.yaml"
        cfg.write_text("lock_timeout_s: 1\n")
        with SimulatorServer(config) as sim:
            done = run_cli(["--config", str(cfg), "collect"], sim_env(sim, tmp_path))
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 1
    assert f"in use by process {holder.pid}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        assert con.execute("select 1").fetchall() == [(1,)]
