"""Alerts from both paths a build takes: the Dagster job (what the schedule runs) and
`itwin-runs collect`, each against the story world of the simulator and a loopback webhook
receiver; the URL appears in no output, log, event, metadata, warehouse or report."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from pipeline.alerts import current_findings
from pipeline.alerts.webhook import webhook_payload
from pipeline.cli import main, simulator_environment, this_hour
from pipeline.definitions import build_definitions
from pipeline.defs.resources import ITwinApiResource
from pipeline.simulator.server import SimulatorServer
from pipeline.simulator.story import demo_config
from tests.alerts.support import SECRET_PART, Receiver, free_port, serving

WEBHOOK_VAR = "ITWIN_RUNS_ALERT_WEBHOOK_URL"


@pytest.fixture(scope="module")
def story() -> Iterator[SimulatorServer]:
    """The demo's world: weeks of history, a rising code, a new one and a spike day."""
    with SimulatorServer(demo_config(this_hour())) as sim:
        yield sim


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serving(Receiver(port=free_port())) as running:
        yield running


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def resource_for(sim: SimulatorServer) -> ITwinApiResource:
    return ITwinApiResource(
        base_url=sim.base_url,
        token_url=sim.token_url,
        client_id=sim.client_id,
        client_secret=sim.client_secret,
        connection_ids=list(sim.direct_connection_ids),
        imodel_ids=list(sim.imodel_ids),
        rate_limit_per_minute=60_000,
    )


def findings_of(data_dir: Path) -> list[str]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return [f.text for f in current_findings(con)]


def posted(findings: list[str]) -> list[str]:
    """The messages these findings make, as the receiver gets them (escaped, any order)."""
    return sorted(webhook_payload(text)["text"] for text in findings)


def assert_url_nowhere(url: str, data_dir: Path, *texts: str) -> None:
    """Neither the URL nor its secret part in these texts, the warehouse or any report."""
    for text in texts:
        assert SECRET_PART not in text and url not in text
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        tables = [t for (t,) in con.execute("select table_name from duckdb_tables()").fetchall()]
        for table in tables:
            assert SECRET_PART not in repr(con.execute(f'select * from "{table}"').fetchall())
    for path in [data_dir / "warehouse.duckdb", *(data_dir / "reports").iterdir()]:
        assert SECRET_PART.encode() not in path.read_bytes(), path


def alerts_metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    (mat,) = result.asset_materializations_for_node("alerts")
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


@pytest.mark.long
def test_the_dagster_job_sends_each_finding_once(
    story: SimulatorServer,
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(WEBHOOK_VAR, receiver.url)  # as a deployment sets it
    defs = build_definitions(data_dir=tmp_path, itwin_api=resource_for(story))
    first = defs.resolve_job_def("collect_job").execute_in_process()
    assert first.success
    findings = findings_of(tmp_path)
    assert len(findings) >= 3  # the story's spike day, new code and rising code
    assert sorted(receiver.texts) == posted(findings)
    meta = alerts_metadata(first)
    assert (meta["findings"], meta["sent"], meta["pending"]) == (len(findings), len(findings), 0)

    again = defs.resolve_job_def("report_job").execute_in_process()
    assert again.success and alerts_metadata(again)["sent"] == 0
    assert len(receiver.bodies) == len(findings)  # sent once

    events = "\n".join(repr(e) for run in (first, again) for e in run.all_events)
    assert_url_nowhere(receiver.url, tmp_path, events, debug_logs.text)


@pytest.mark.long
def test_a_failing_receiver_never_fails_the_job_and_gets_the_alerts_later(
    story: SimulatorServer, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WEBHOOK_VAR, receiver.url)
    receiver.statuses = [503]  # down for the first POST; the rest wait for the next build
    defs = build_definitions(data_dir=tmp_path, itwin_api=resource_for(story))
    first = defs.resolve_job_def("collect_job").execute_in_process()
    assert first.success
    meta = alerts_metadata(first)
    assert meta["sent"] == 0 and meta["failed"] == 1 and meta["pending"] == meta["findings"] > 0
    assert "503" in meta["problem"] and SECRET_PART not in meta["problem"]
    assert receiver.bodies == []

    recovered = defs.resolve_job_def("report_job").execute_in_process()
    assert recovered.success
    assert alerts_metadata(recovered)["sent"] == meta["findings"]
    assert sorted(receiver.texts) == posted(findings_of(tmp_path))


def test_without_a_url_nothing_is_sent_and_the_findings_are_counted(
    story: SimulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(WEBHOOK_VAR, raising=False)
    defs = build_definitions(data_dir=tmp_path, itwin_api=resource_for(story))
    result = defs.resolve_job_def("collect_job").execute_in_process()
    assert result.success
    meta = alerts_metadata(result)
    assert meta["webhook_configured"] is False and meta["sent"] == 0 and meta["findings"] >= 3


@pytest.mark.long
def test_itwin_runs_collect_sends_and_its_summary_ends_with_the_findings(
    story: SimulatorServer,
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    env = {
        **simulator_environment(story),
        "ITWIN_RATE_LIMIT_PER_MINUTE": "60000",
        "ITWIN_RUNS_DATA_DIR": str(tmp_path),
        WEBHOOK_VAR: receiver.url,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["collect"]) == 0
    out = capsys.readouterr()
    findings = findings_of(tmp_path)
    assert findings and sorted(receiver.texts) == posted(findings)
    tail = out.out.strip().splitlines()[-len(findings) - 1 :]
    assert tail[0].startswith(f"is it getting worse? {len(findings)} findings")
    assert [line.removeprefix("  - ") for line in tail[1:]] == findings
    assert_url_nowhere(receiver.url, tmp_path, out.out, out.err, debug_logs.text)


def test_a_webhook_url_over_plain_http_to_another_host_is_refused_without_echoing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://hooks.example.com/services/{SECRET_PART}"
    monkeypatch.setenv(WEBHOOK_VAR, url)
    monkeypatch.setenv("ITWIN_RUNS_DATA_DIR", str(tmp_path))
    assert main(["collect"]) == 2
    err = capsys.readouterr().err
    assert WEBHOOK_VAR in err and "https" in err and SECRET_PART not in err


def test_the_demo_answers_is_it_getting_worse_and_posts_nothing(
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key in ("ITWIN_CONNECTION_IDS", "ITWIN_IMODEL_IDS", "ITWIN_RUNS_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("ITWIN_RUNS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(WEBHOOK_VAR, receiver.url)  # a real channel must not get the story
    assert main(["demo"]) == 0
    assert receiver.bodies == []
    out = capsys.readouterr().out.strip().splitlines()
    findings = findings_of(tmp_path)
    # The story: a spike day, a new code and a rising one, each a line at the end.
    assert (
        out[-len(findings) - 1]
        == f"is it getting worse? {len(findings)} findings (what the alerts say):"
    )
    tail = "\n".join(out[-len(findings) :])
    assert "Task failure spike on" in tail and " is new: " in tail and " is rising: " in tail
