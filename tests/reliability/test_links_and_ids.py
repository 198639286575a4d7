"""Where the token may go: next links and redirects elsewhere, and ids built to escape the path.

The API here is a recording server that answers one page whose next link points somewhere
else (or a redirect); a second recording server stands for "somewhere else" and must never
see the token.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.itwin.errors import PagingError
from pipeline.itwin.paging import Pager
from pipeline.itwin.settings import Secret, Settings
from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.server import SimulatorServer
from tests.reliability.helpers import Hit, Recorder, Reply
from tests.support import collect_once

TOKEN = "canary-token-never-elsewhere-51f0"
CONN = "c1"


def page(next_href: str | None) -> bytes:
    run = {"id": "r1", "state": "Completed", "result": "Success", "jobs": []}
    links: dict[str, Any] = {"self": {"href": "self"}}
    if next_href is not None:
        links["next"] = {"href": next_href}
    return json.dumps({"runs": [run], "_links": links}).encode()


def next_links(api: Recorder, other: Recorder) -> dict[str, str]:
    path = f"/export/connections/{CONN}/runs?$skip=1&$top=1"
    return {
        "another port": f"{other.base_url}{path}",
        "another host name": f"http://localhost:{api.port}{path}",
        "https on the same host": f"https://127.0.0.1:{api.port}{path}",
        "credentials to another origin": f"http://user:pw@127.0.0.1:{other.port}{path}",
        "api host as user info": f"http://127.0.0.1:{api.port}@127.0.0.1:{other.port}{path}",
        "protocol-relative": f"//127.0.0.1:{other.port}{path}",
        "looping to itself": f"/export/connections/{CONN}/runs",
    }


CASES = [
    "another port",
    "another host name",
    "https on the same host",
    "credentials to another origin",
    "api host as user info",
    "protocol-relative",
    "looping to itself",
]


def api_settings(api: Recorder, data_dir: Path) -> Settings:
    return Settings(
        base_url=api.base_url,
        access_token=Secret(TOKEN),
        connection_ids=(CONN,),
        data_dir=data_dir,
        rate_limit_per_minute=60_000,
        backoff_base_s=0.01,
        backoff_cap_s=0.05,
        max_retries=1,
    )


@pytest.mark.parametrize("case", CASES)
def test_next_links_elsewhere_are_refused_and_the_token_stays_home(
    case: str, tmp_path: Path
) -> None:
    with Recorder() as other:
        links: dict[str, str] = {}

        def respond(hit: Hit, n: int) -> Reply:
            return Reply(200, page(links[case]))

        with Recorder(respond) as api:
            links.update(next_links(api, other))
            result = collect_once(api_settings(api, tmp_path))
            api_hits = len(api.hits)
    [failed] = result.failed
    assert isinstance(failed.error, PagingError), failed.error
    assert failed.connection_id == CONN
    assert other.hits == [], "nothing may reach another origin"
    assert api_hits <= 2  # the first page, and at most one repeat before a loop is seen
    assert TOKEN not in str(failed.error)


def test_a_redirect_to_another_host_is_not_followed(tmp_path: Path) -> None:
    with Recorder() as other:

        def respond(hit: Hit, n: int) -> Reply:
            return Reply(302, b"", {"Location": f"{other.base_url}/steal"})

        with Recorder(respond) as api:
            result = collect_once(api_settings(api, tmp_path))
    [failed] = result.failed
    assert failed.error is not None and failed.error.code == "RedirectRefused"
    assert other.base_url in str(failed.error)
    assert other.hits == []


def test_an_https_api_refuses_a_plain_http_next_link() -> None:
    base = httpx.URL("https://api.example.com/")
    pager = Pager(base.join("export/connections/c/runs"), base_url=base, max_pages=10)
    body = {"_links": {"next": {"href": "http://api.example.com/export/connections/c/runs?x=1"}}}
    with pytest.raises(PagingError):
        pager.next_url(body, current=base.join("export/connections/c/runs"), items=1)


BAD_IDS = {
    "dot-dot": "..",
    "slash": "a/b",
    "encoded dots": "%2e%2e",
    "query and fragment": "a?x=1#",
    "very long": "a" * 5_000,
    "nul": "a\x00b",
}


@pytest.mark.parametrize("name", sorted(BAD_IDS))
def test_ids_built_to_escape_the_path_are_rejected_before_any_request(
    name: str, tmp_path: Path
) -> None:
    bad = BAD_IDS[name]
    with SimulatorServer(SimulatorConfig(seed=3, connections=2, imodels=1)) as sim:
        settings = Settings(
            base_url=sim.base_url,
            token_url=sim.token_url,
            client_id=sim.client_id,
            client_secret=Secret(sim.client_secret),
            connection_ids=(bad,),
            imodel_ids=(bad,),
            data_dir=tmp_path,
        )
        result = collect_once(settings)
        assert sim.requests == []  # not even a token request
    assert len(result.failed) == 2
    for failed in result.failed:
        assert failed.error is not None and "invalid" in str(failed.error)
