"""The shipped deploy/postgres/dagster.yaml: the collect job run against a real PostgreSQL.

The server is started by the test (initdb and pg_ctl in a temporary folder, on a free
loopback port, password authentication); the test skips only where no server can be
started (no PostgreSQL binaries, or root with no `postgres` user to run them as).
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import psycopg2
import pytest
import yaml

from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.server import SimulatorServer

ROOT = Path(__file__).resolve().parents[2]
INSTANCE_YAML = ROOT / "deploy" / "postgres" / "dagster.yaml"
DAGSTER = Path(sys.executable).with_name("dagster")


@dataclass(frozen=True)
class PostgresServer:
    port: int
    user: str
    password: str
    database: str

    def environment(self) -> dict[str, str]:
        """The DAGSTER_PG_* variables the shipped dagster.yaml reads."""
        return {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_DB": self.database,
            "DAGSTER_PG_USERNAME": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
        }

    def connect(self, database: str | None = None) -> psycopg2.extensions.connection:
        return psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database or self.database,
        )


def _server_binaries() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian's layout), else initdb on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major_version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _major_version(initdb: str) -> int:
    version = Path(initdb).parts[-3]
    return int(version) if version.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_server_user(base: Path) -> list[str]:
    """The prefix that runs the server's commands: PostgreSQL refuses to run as root."""
    if os.geteuid() != 0:
        return []
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("running as root and runuser is missing: cannot start PostgreSQL")
    for path in (base, *base.iterdir()):
        os.chown(path, account.pw_uid, account.pw_gid)
    return [runuser, "-u", "postgres", "--"]


@pytest.fixture
def postgres_server() -> Iterator[PostgresServer]:
    binaries = _server_binaries()
    if binaries is None:
        pytest.skip("no PostgreSQL server here (initdb not found): apt-get install postgresql")
    # Not under pytest's tmp_path: the server's user must be able to enter the folder.
    base = Path(tempfile.mkdtemp(prefix="itwin-runs-pg-"))
    base.chmod(0o755)
    password = secrets.token_urlsafe(16)
    (base / "password").write_text(password)
    prefix = _as_server_user(base)
    data, port = base / "data", _free_port()
    initdb = [str(binaries / "initdb"), "-D", str(data), "-U", "itwin", "-E", "UTF8"]
    initdb += ["--auth=scram-sha-256", f"--pwfile={base / 'password'}", "--no-sync"]
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = [str(binaries / "pg_ctl"), "-D", str(data), "-l", str(base / "log")]
    start += ["-o", options, "-w", "-t", "30", "start"]
    try:
        for command in (initdb, start):
            done = subprocess.run(prefix + command, capture_output=True, text=True, timeout=60)
            if done.returncode != 0:
                log = (base / "log").read_text() if (base / "log").exists() else ""
                pytest.skip(f"PostgreSQL did not start: {done.stderr.strip()} {log[-500:]}")
        server = PostgresServer(port, "itwin", password, "dagster")
        admin = server.connect("postgres")
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute("CREATE DATABASE dagster")
        admin.close()
        yield server
    finally:
        stop = [str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
        if (data / "postmaster.pid").exists():
            subprocess.run(prefix + stop, capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


def test_shipped_instance_config_reads_every_connection_setting_from_the_environment() -> None:
    config = yaml.safe_load(INSTANCE_YAML.read_text())
    settings = config["storage"]["postgres"]["postgres_db"]
    connection = {"hostname", "port", "db_name", "username", "password"}
    assert connection <= set(settings)
    assert all(set(settings[name]) == {"env"} for name in connection), settings
    assert config["concurrency"]["runs"]["max_concurrent_runs"] == 1  # one warehouse writer


@pytest.mark.long
def test_collect_job_runs_on_postgres_instance_storage(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(INSTANCE_YAML, home / "dagster.yaml")
    # In one process: a worker process per step would re-import Dagster twenty times.
    run_config = tmp_path / "run.yaml"
    run_config.write_text("execution:\n  config:\n    in_process: {}\n")
    this_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    config = SimulatorConfig(seed=3, connections=3, runs_per_connection=20, start_time=this_hour)
    with SimulatorServer(config) as sim:
        env = {
            **os.environ,
            **sim.environment(),
            **postgres_server.environment(),
            "DAGSTER_HOME": str(home),
            "ITWIN_RUNS_DATA_DIR": str(tmp_path / "data"),
            "ITWIN_RATE_LIMIT_PER_MINUTE": "60000",
        }
        command = [str(DAGSTER), "job", "execute", "-m", "pipeline.definitions"]
        command += ["-j", "collect_job", "-c", str(run_config)]
        done = subprocess.run(
            command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=180
        )
    assert done.returncode == 0, done.stderr[-3000:]

    with postgres_server.connect() as con, con.cursor() as cursor:
        cursor.execute("SELECT status FROM runs WHERE pipeline_name = 'collect_job'")
        assert cursor.fetchall() == [("SUCCESS",)]
        cursor.execute(
            "SELECT DISTINCT asset_key FROM event_logs "
            "WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
        )
        materialized = {row[0] for row in cursor.fetchall()}
    assert '["runs"]' in materialized  # the collection's core tables
    assert '["html_report"]' in materialized
    assert not list(home.glob("**/*.db")), "run history went to SQLite, not PostgreSQL"
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as db:
        stored = db.execute("SELECT count(DISTINCT connection_id) FROM runs").fetchone()
    assert stored is not None and stored[0] >= 3
