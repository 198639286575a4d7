"""`itwin-runs` as a user runs it: exit codes, one-line errors, help and the summary."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import psutil
import pytest

import pipeline.warehouse.models
from pipeline.cli import build_parser, main
from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.server import SimulatorServer
from pipeline.warehouse.store import open_warehouse
from tests.support import sim_env, snapshot

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


def test_partial_failure_exits_1_and_names_connection_and_code(tmp_path: Path) -> None:
    config = SimulatorConfig(seed=31, connections=3, imodels=1, runs_per_connection=30)
    with SimulatorServer(config) as sim:
        bad = sim.direct_connection_ids[0]
        sim.faults.forbidden_connections.add(bad)
        done = run_cli(["collect"], sim_env(sim, tmp_path))
    assert done.returncode == 1, done.stderr
    name = sim.world.connections[bad].display_name  # known from the iModel's listing
    assert f"{name} ({bad}): HTTP 403, InsufficientPermissions" in done.stdout
    assert "top failure causes" in done.stdout
    assert (tmp_path / "reports" / "report.html").exists()
    assert sim.client_secret not in done.stdout + done.stderr


@pytest.mark.long
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
        ({"ITWIN_RUNS_DATA_DIR": "/nonexistent/dir"}, ["rebuild"], "no warehouse at"),
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


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (commands,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(commands.choices)


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_command_help_shows_an_example_and_explains_every_argument(
    command: str, capsys
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert f"itwin-runs {command}" in out.split("\nexample:\n", 1)[1]
    for action in subcommands()[command]._actions:
        assert action.help, f"{command} {action.option_strings or action.dest} has no help"


def test_top_level_help_describes_every_command(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # argparse wraps to this width; none breaks a word
    with pytest.raises(SystemExit):
        main(["--help"])
    words = " ".join(capsys.readouterr().out.split())
    for name, parser in subcommands().items():
        assert parser.description is not None
        summary = parser.description.split(".\n")[0].removesuffix(".")
        assert f" {name} {summary[0].lower()}{summary[1:]}" in words, name
    assert "examples: itwin-runs demo" in words


def test_rebuild_restores_the_core_tables_from_raw_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    for key in list(os.environ):
        if key.startswith("ITWIN_"):
            monkeypatch.delenv(key)
    config = SimulatorConfig(seed=34, connections=2, imodels=1, runs_per_connection=20)
    with SimulatorServer(config) as sim:
        for key, value in sim_env(sim, tmp_path).items():
            monkeypatch.setenv(key, value)
        assert main(["collect"]) == 0
    warehouse = tmp_path / "warehouse.duckdb"
    before = snapshot(warehouse)
    assert before["tasks"] and before["task_errors"]
    with duckdb.connect(str(warehouse)) as con:
        con.execute("delete from task_errors")
        con.execute("delete from tasks where task_id like '%1%'")
        con.execute("update runs set state = 'Garbled', result = null")
        con.execute("delete from jobs where run_id in (select run_id from runs limit 5)")
        con.execute("drop table failure_daily")
    (tmp_path / "reports" / "failure_daily.parquet").unlink()
    capsys.readouterr()

    assert main(["rebuild"]) == 0
    assert snapshot(warehouse) == before
    captured = capsys.readouterr()
    assert "rebuilt the core tables from 40 runs' raw versions" in captured.err
    assert "tables: 40 runs" in captured.out
    assert (tmp_path / "reports" / "failure_daily.parquet").exists()


def test_a_model_reading_an_undeclared_table_stops_report_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    sql_dir = tmp_path / "sql"
    shutil.copytree(pipeline.warehouse.models.SQL_DIR, sql_dir)
    (sql_dir / "marts" / "jobs_per_run.sql").write_text(
        "-- grain: one row per run\n-- depends_on: stg_runs\n"
        "select run_id, count(*) as jobs from stg_runs join jobs using (run_id) group by run_id\n"
    )
    monkeypatch.setattr(pipeline.warehouse.models, "SQL_DIR", sql_dir)
    monkeypatch.setenv("ITWIN_RUNS_DATA_DIR", str(tmp_path))
    with open_warehouse(tmp_path / "warehouse.duckdb"):
        pass
    assert main(["report"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "itwin-runs: sql/marts/jobs_per_run.sql: reads jobs without declaring it in depends_on"
    )


FAKE_DAGSTER = """
import os, pathlib, subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", sys.argv[2]])
ready = pathlib.Path(sys.argv[1])
ready.with_suffix(".tmp").write_text(f"{os.getpid()} {grandchild.pid}")
ready.with_suffix(".tmp").rename(ready)
time.sleep(600)
"""
SLEEPER = "import time; time.sleep(600)"
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def start_and_wait_for_children(
    script: str, ready: Path
) -> tuple[subprocess.Popen[str], list[int]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        env={**CLEAN_ENV, "DAGSTER_HOME": str(ready.parent / "dagster_home")},
        stderr=subprocess.PIPE,
        text=True,
    )
    for _ in range(1200):
        if ready.exists() or proc.poll() is not None:
            break
        time.sleep(0.05)
    assert ready.exists(), proc.communicate(timeout=10)[1]
    return proc, [int(pid) for pid in ready.read_text().split()]


def test_dev_stops_its_dagster_child_and_what_it_started_on_sigterm(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    script = (
        "import sys; import pipeline.dev as dev; "
        f"dev.dagster_dev_command = lambda port: [sys.executable, '-c', {FAKE_DAGSTER!r}, "
        f"{str(ready)!r}, {SLEEPER!r}]; "
        "from pipeline.cli import main; sys.exit(main(['dev']))"
    )
    proc, children = start_and_wait_for_children(script, ready)
    try:
        assert all(running(pid) for pid in children)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "stopped dagster dev" in err
        assert not any(running(pid) for pid in children)
    finally:
        for pid in children:
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    script = (
        "import sys; from pipeline.dev import run_process_group; "
        f"cmd = [sys.executable, '-c', {FAKE_DAGSTER!r}, {str(ready)!r}, {STUBBORN!r}]; "
        "print(run_process_group(cmd, {}, grace_s=0.5), file=sys.stderr)"
    )
    proc, children = start_and_wait_for_children(script, ready)
    try:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "True)" in err  # (exit code, stopped by a signal)
        assert not any(running(pid) for pid in children)
    finally:
        for pid in children:
            if running(pid):
                os.kill(pid, signal.SIGKILL)
