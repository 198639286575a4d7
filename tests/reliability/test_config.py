"""Configuration problems as a user meets them (`itwin-runs` in a subprocess), and TLS.

Each configuration problem is one clear line on stderr and exit code 2; an API that cannot
be reached fails its connections (exit 1) naming them; TLS verification is never off.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.itwin.client import ExportApiClient
from pipeline.itwin.errors import ServiceUnavailableError
from pipeline.itwin.settings import Secret, Settings
from tests.reliability.helpers import Hit, Recorder, Reply

ROOT = Path(__file__).parents[2]
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("ITWIN_")}


def cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        env={**CLEAN_ENV, "PYTHONPATH": str(ROOT), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


TARGET = {"ITWIN_CONNECTION_IDS": "c1"}
CREDS = {"ITWIN_ACCESS_TOKEN": "t"}


def config_cases(tmp: Path) -> dict[str, tuple[list[str], dict[str, str], str]]:
    (tmp / "bad.yaml").write_text("connection_ids: [a\n")
    (tmp / "list.yaml").write_text("- just\n- a list\n")
    (tmp / "unknown.yaml").write_text("clinet_id: typo\n")
    (tmp / "binary.yaml").write_bytes(b"\xff\xfe\x00garbage")
    (tmp / "folder.yaml").mkdir()
    return {
        "no credentials": (["collect"], TARGET, "ITWIN_CLIENT_ID"),
        "secret without id": (["collect"], {**TARGET, "ITWIN_CLIENT_SECRET": "s"}, "credentials"),
        "no connections": (["collect"], CREDS, "ITWIN_CONNECTION_IDS"),
        "missing config file": (["--config", str(tmp / "nope.yaml"), "collect"], {}, "nope.yaml"),
        "config file is a folder": (
            ["--config", str(tmp / "folder.yaml"), "collect"],
            {},
            "folder",
        ),
        "malformed YAML": (["--config", str(tmp / "bad.yaml"), "collect"], {}, "YAML"),
        "not a mapping": (["--config", str(tmp / "list.yaml"), "collect"], {}, "mapping"),
        "unknown setting": (["--config", str(tmp / "unknown.yaml"), "collect"], {}, "clinet_id"),
        "not UTF-8": (["--config", str(tmp / "binary.yaml"), "collect"], {}, "binary.yaml"),
        "bad rate": (
            ["collect"],
            {**CREDS, **TARGET, "ITWIN_RATE_LIMIT_PER_MINUTE": "-3"},
            "rate_limit_per_minute",
        ),
        "config via env var, missing": (
            ["collect"],
            {"ITWIN_RUNS_CONFIG": str(tmp / "gone.yaml")},
            "gone.yaml",
        ),
    }


def test_every_configuration_problem_is_one_line_and_exit_2(tmp_path: Path) -> None:
    problems = []
    for name, (args, env, needle) in config_cases(tmp_path).items():
        done = cli(args, {"ITWIN_RUNS_DATA_DIR": str(tmp_path / "data"), **env}, tmp_path)
        err = done.stderr.strip()
        if done.returncode != 2 or len(err.splitlines()) != 1 or needle not in err:
            problems.append((name, done.returncode, err[-400:]))
        if "Traceback" in done.stderr:
            problems.append((name, "traceback", err[-400:]))
    assert problems == []


@pytest.mark.long
def test_an_unreachable_api_fails_each_connection_by_name(tmp_path: Path) -> None:
    config = tmp_path / "fast.yaml"  # few, short retries: the point is the message
    config.write_text("max_retries: 1\nbackoff_base_s: 0.01\nbackoff_cap_s: 0.02\n")
    env = {
        "ITWIN_RUNS_CONFIG": str(config),
        "ITWIN_API_BASE_URL": "http://127.0.0.1:9",  # discard port: nothing listens
        "ITWIN_ACCESS_TOKEN": "t",
        "ITWIN_CONNECTION_IDS": "conn-a,conn-b",
        "ITWIN_RUNS_DATA_DIR": str(tmp_path / "data"),
    }
    done = cli(["collect"], env, tmp_path)
    assert done.returncode == 1, done.stderr[-500:]
    for conn in ("conn-a", "conn-b"):
        [line] = [ln for ln in done.stdout.splitlines() if conn in ln]
        assert "connection failed" in line or "ConnectError" in line, line
    assert "Traceback" not in done.stderr


# --- TLS -------------------------------------------------------------------------------------


def test_the_client_verifies_tls_certificates() -> None:
    client = ExportApiClient(Settings(base_url="https://api.example.com", access_token=Secret("t")))
    pool = client._http._transport._pool  # httpx's default transport and its SSL context
    context: ssl.SSLContext = pool._ssl_context
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    asyncio.run(client.aclose())


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_a_self_signed_https_api_is_refused_and_gets_no_token(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )

    def respond(hit: Hit, n: int) -> Reply:
        return Reply(200, b'{"connection": {"id": "c1"}}')

    with Recorder(respond) as api:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        api._server.socket = context.wrap_socket(api._server.socket, server_side=True)
        settings = Settings(
            base_url=f"https://127.0.0.1:{api.port}",
            access_token=Secret("tls-canary-token"),
            max_retries=1,
            backoff_base_s=0.01,
            backoff_cap_s=0.02,
        )

        async def call() -> None:
            async with ExportApiClient(settings) as client:
                await client.get_connection("c1")

        with pytest.raises(ServiceUnavailableError) as caught:
            asyncio.run(call())
    assert "connection failed" in str(caught.value)
    assert api.hits == []  # the handshake failed: no request, no token
