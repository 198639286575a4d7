"""Secrets end to end: canary credentials through the CLI and the Dagster job at DEBUG level.

Afterwards none of stdout, stderr, log records, the Dagster event log and metadata, error
texts, the warehouse (its bytes and every text value in it), Parquet files, the HTML report
or any file left in the temp dirs may contain a canary, nor any token the API issued.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest

from pipeline.definitions import build_definitions
from pipeline.defs.resources import ITwinApiResource
from pipeline.errors import ITwinRunsError
from pipeline.itwin.client import ExportApiClient
from pipeline.itwin.settings import Secret
from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.server import SimulatorServer
from tests.support import sim_settings

CANARY_TOKEN = "canary-tok-3f9a1c7e52"
CANARY_SECRET = "canary-sec-8b24d60f19"
ROOT = Path(__file__).parents[2]
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("ITWIN_")}


def simulator() -> SimulatorServer:
    config = SimulatorConfig(
        seed=77,
        connections=3,
        imodels=1,
        runs_per_connection=20,
        client_secret=CANARY_SECRET,
        static_token=CANARY_TOKEN,
        token_lifetime_s=2.0,  # several renewals during a collection
    )
    return SimulatorServer(config)


def issued_tokens(sim: SimulatorServer) -> list[str]:
    return list(sim.app.tokens._issued)


def cli_collect(sim: SimulatorServer, data: Path, tmp: Path, **env: str) -> str:
    tmp.mkdir(parents=True, exist_ok=True)
    full_env = {
        **CLEAN_ENV,
        "PYTHONPATH": str(ROOT),
        "TMPDIR": str(tmp),
        "ITWIN_API_BASE_URL": sim.base_url,
        "ITWIN_TOKEN_URL": sim.token_url,
        "ITWIN_CONNECTION_IDS": ",".join(sim.direct_connection_ids),
        "ITWIN_IMODEL_IDS": ",".join(sim.imodel_ids),
        "ITWIN_RATE_LIMIT_PER_MINUTE": "60000",
        "ITWIN_RUNS_DATA_DIR": str(data),
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "-v", "collect"],
        env=full_env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 1, done.stderr[-800:]  # one connection is forbidden
    assert "DEBUG" in done.stderr  # the log level really was DEBUG
    return done.stdout + done.stderr


def texts_in_warehouse(path: Path) -> str:
    """Every text value of every table, so compressed storage cannot hide a canary."""
    out = []
    with duckdb.connect(str(path), read_only=True) as con:
        tables = [r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()]
        for table in tables:
            rows = con.execute(f'select * from "{table}"').fetchall()
            out.append(repr(rows))
    return "\n".join(out)


def leaks_in_files(root: Path, canaries: list[str]) -> list[str]:
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        texts = [data]
        if path.suffix == ".parquet":
            texts.append(repr(pq.read_table(path).to_pylist()).encode())
        if path.suffix == ".duckdb":
            texts.append(texts_in_warehouse(path).encode())
        for canary in canaries:
            if any(canary.encode() in t for t in texts):
                found.append(f"{canary} in {path}")
    return found


@pytest.mark.parametrize("credentials", ["client secret", "access token"])
def test_canaries_never_leave_the_cli_at_debug_level(tmp_path: Path, credentials: str) -> None:
    with simulator() as sim:
        sim.faults.forbidden_connections.add(sim.direct_connection_ids[0])
        sim.faults.error_5xx_rate = 0.1  # retries are logged too
        env = (
            {"ITWIN_CLIENT_ID": sim.client_id, "ITWIN_CLIENT_SECRET": CANARY_SECRET}
            if credentials == "client secret"
            else {"ITWIN_ACCESS_TOKEN": CANARY_TOKEN}
        )
        output = cli_collect(sim, tmp_path / "data", tmp_path / "tmp", **env)
        canaries = [CANARY_TOKEN, CANARY_SECRET, *issued_tokens(sim)]
        if credentials == "client secret":
            assert len(canaries) > 2, "the API issued tokens to check for"
    assert (tmp_path / "data" / "reports" / "report.html").exists()
    assert [c for c in canaries if c in output] == []
    assert leaks_in_files(tmp_path, canaries) == []


def test_canaries_never_reach_the_dagster_event_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with simulator() as sim:
        sim.faults.forbidden_connections.add(sim.direct_connection_ids[0])
        sim.faults.error_5xx_rate = 0.1
        resource = ITwinApiResource(
            base_url=sim.base_url,
            token_url=sim.token_url,
            client_id=sim.client_id,
            client_secret=CANARY_SECRET,
            connection_ids=list(sim.direct_connection_ids),
            imodel_ids=list(sim.imodel_ids),
            rate_limit_per_minute=60_000,
        )
        defs = build_definitions(data_dir=tmp_path / "job", itwin_api=resource)
        instance = dg.DagsterInstance.ephemeral()
        result = defs.resolve_job_def("collect_job").execute_in_process(
            instance=instance, raise_on_error=False
        )
        # Error texts: a refused token and a refused connection, as raised.
        errors = []

        async def refused() -> None:
            settings = sim_settings(sim, tmp_path, access_token=Secret(CANARY_TOKEN + "x"))
            async with ExportApiClient(settings) as client:
                for conn in sim.direct_connection_ids[:1]:
                    try:
                        await client.get_connection(conn)
                    except ITwinRunsError as exc:
                        errors.append(f"{exc!s} {exc!r} {exc.args!r}")

        asyncio.run(refused())
        canaries = [CANARY_TOKEN, CANARY_SECRET, *issued_tokens(sim)]
    assert result.success
    assert errors, "the refusals really raised"
    events = [dg.serialize_value(e) for e in result.all_events]
    logs = [dg.serialize_value(e) for e in instance.all_logs(result.run_id)]
    assert any("forbidden" in t.lower() or "403" in t for t in events + logs)
    records = [r.getMessage() + repr(r.args) for r in caplog.records]
    haystacks = {"events": events, "event log": logs, "log records": records, "errors": errors}
    leaks = [
        (where, c) for where, texts in haystacks.items() for t in texts for c in canaries if c in t
    ]
    assert leaks == []
    assert leaks_in_files(tmp_path, canaries) == []


@pytest.mark.parametrize(
    "env",
    [
        {"ITWIN_ACCESS_TOKEN": CANARY_TOKEN + " "},
        {"ITWIN_ACCESS_TOKEN": CANARY_TOKEN + "\r"},
        {"ITWIN_CLIENT_ID": "sim-client", "ITWIN_CLIENT_SECRET": CANARY_SECRET + "\n"},
        {"ITWIN_ACCESS_TOKEN": "t", "ITWIN_API_BASE_URL": f"https://u:{CANARY_SECRET}@a.example"},
    ],
    ids=["token-space", "token-cr", "secret-newline", "password-in-url"],
)
def test_a_bad_secret_is_one_line_at_configuration_and_never_echoed(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """Under -v, the secret must not reach the HTTP stack's header errors or any log."""
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "-v", "collect"],
        env={
            **CLEAN_ENV,
            "PYTHONPATH": str(ROOT),
            "ITWIN_CONNECTION_IDS": "c1",
            "ITWIN_RUNS_DATA_DIR": str(tmp_path / "data"),
            **env,
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-800:]
    assert CANARY_TOKEN not in output and CANARY_SECRET not in output
    assert "whitespace or a control character" in output or "user name or password" in output


def test_the_http_stack_logs_at_debug_carry_no_secret_or_url_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A record that would still carry a secret (ours or an issued token), or a URL's
    user:password@, is redacted before any handler sees it, on httpx and httpcore loggers."""
    caplog.set_level(logging.DEBUG)
    with simulator() as sim:
        settings = sim_settings(sim, Path("unused"), access_token=None)

        async def collect() -> None:
            async with ExportApiClient(settings) as client:
                for conn in sim.direct_connection_ids:
                    async for _ in client.list_runs(conn):
                        pass

        asyncio.run(collect())
        issued = issued_tokens(sim)
    assert issued, "the API issued a token to look for"
    for name in ("httpx", "httpcore.http11", "httpcore.connection", "pipeline.itwin"):
        logging.getLogger(name).debug(
            "header error %r for https://user:pw-%s@h/x", f"Bearer {issued[0]}", CANARY_SECRET
        )
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "HTTP Request: GET" in text  # httpx really logged the collection
    assert [c for c in [CANARY_SECRET, *issued] if c in text] == []
    assert text.count("https://***@h/x") == 4
