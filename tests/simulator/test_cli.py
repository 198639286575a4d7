"""`itwin-runs simulate`: prints what to export, serves until interrupted, curl-able."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import orjson

from pipeline.simulator.cli import describe
from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.server import SimulatorServer


def test_describe_lists_every_setting() -> None:
    with SimulatorServer(SimulatorConfig(connections=4, imodels=2)) as sim:
        text = describe(sim)
    for line in (
        f"export ITWIN_API_BASE_URL={sim.base_url}",
        f"export ITWIN_ACCESS_TOKEN={sim.static_token}",
        f"export ITWIN_CLIENT_ID={sim.client_id}",
        f"export ITWIN_CLIENT_SECRET={sim.client_secret}",
        f"export ITWIN_TOKEN_URL={sim.token_url}",
        f"export ITWIN_CONNECTION_IDS={','.join(sim.direct_connection_ids)}",
        f"export ITWIN_IMODEL_IDS={','.join(sim.imodel_ids)}",
    ):
        assert line in text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_simulate_serves_until_interrupted() -> None:
    port = free_port()
    code = (
        "from pipeline.simulator.cli import serve_forever; "
        f"raise SystemExit(serve_forever({port}, 7))"
    )
    # Started with SIGINT ignored, as a shell starts a background job: Python then installs
    # no KeyboardInterrupt handler, and `simulate` must still stop on SIGINT.
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        assert proc.stdout is not None
        lines: dict[str, str] = {}
        deadline = time.monotonic() + 20
        while "ITWIN_IMODEL_IDS" not in lines and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("export "):
                key, _, value = line[7:].strip().partition("=")
                lines[key] = value
        assert lines["ITWIN_API_BASE_URL"] == f"http://127.0.0.1:{port}"
        conn = lines["ITWIN_CONNECTION_IDS"].split(",")[0]
        answer = httpx.get(
            f"{lines['ITWIN_API_BASE_URL']}/export/connections/{conn}/runs",
            headers={"Authorization": f"Bearer {lines['ITWIN_ACCESS_TOKEN']}"},
        )
        assert answer.status_code == 200 and answer.json()["runs"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_module_entry_serves_a_sized_simulator_and_stops_on_sigterm() -> None:
    sizes = ["--connections", "3", "--runs", "7", "--page-cap", "5"]
    args = ["--json", *sizes, "--proper-links", "--warm"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.simulator", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = orjson.loads(proc.stdout.readline())
        assert len(info["connection_ids"]) == 3
        page = httpx.get(
            f"{info['base_url']}/export/connections/{info['connection_ids'][0]}/runs",
            headers={"Authorization": f"Bearer {info['static_token']}"},
        ).json()
        assert len(page["runs"]) == 5 and "/runs?$skip=5" in page["_links"]["next"]["href"]
        proc.terminate()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
