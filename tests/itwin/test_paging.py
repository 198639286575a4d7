"""Next-link repair, origin check, loop guard and dedupe, against the published pages."""

from __future__ import annotations

import httpx
import pytest

from pipeline.itwin.errors import PagingError
from pipeline.itwin.paging import (
    Pager,
    check_same_origin,
    next_href,
    normalize_next_link,
    origin_text,
)
from tests.itwin.conftest import load_fixture

BASE = httpx.URL("https://api.bentley.com/")


def test_published_malformed_runs_link_is_repaired() -> None:
    href = next_href(load_fixture("list-runs-200.json"))
    assert href is not None and "&$skip" in href and "?" not in href
    fixed = httpx.URL(normalize_next_link(href))
    assert fixed.path.endswith("/runs")
    assert dict(fixed.params) == {"$skip": "50", "$top": "50"}


def test_published_connections_link_is_left_alone() -> None:
    href = next_href(load_fixture("list-connections-200.json"))
    assert href == "https://api.bentley.com/export/connections?$skip=200&$top=50"
    assert normalize_next_link(href) == href


@pytest.mark.parametrize(
    "href",
    [
        "https://api.bentley.com/export/connections/a/runs?$skip=50&$top=50",
        "https://api.bentley.com/export/connections/a&b/runs",  # "&" inside a path segment
        "https://api.bentley.com/export/connections/a/runs",
    ],
)
def test_well_formed_links_are_unchanged(href: str) -> None:
    assert normalize_next_link(href) == href


@pytest.mark.parametrize(
    "body", [{}, {"_links": None}, {"_links": {"next": None}}, {"_links": {"next": {"href": ""}}}]
)
def test_absent_or_null_next_link_means_last_page(body: dict[str, object]) -> None:
    assert next_href(body) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/export/connections/a/runs",
        "http://api.bentley.com/export/connections/a/runs",
        "https://api.bentley.com:8443/export/connections/a/runs",
        "https://api.bentley.com.evil.example/x",
    ],
)
def test_foreign_origins_are_refused_naming_the_origin(url: str) -> None:
    with pytest.raises(PagingError) as info:
        check_same_origin(httpx.URL(url), BASE, connection_id="c1")
    assert origin_text(httpx.URL(url)) in str(info.value)
    assert info.value.connection_id == "c1"
    assert info.value.code == "ForeignNextLink"


def test_default_port_is_the_same_origin() -> None:
    check_same_origin(httpx.URL("https://API.bentley.com:443/x"), BASE, connection_id=None)


def _page(next_link: str | None) -> dict[str, object]:
    return {"runs": [{"id": "r"}], "_links": {"next": {"href": next_link}} if next_link else {}}


def _pager(max_pages: int = 100) -> Pager:
    return Pager(
        BASE.join("export/connections/c/runs"),
        base_url=BASE,
        max_pages=max_pages,
        connection_id="c",
    )


def test_pager_follows_relative_and_absolute_links() -> None:
    pager = _pager()
    current = BASE.join("export/connections/c/runs")
    nxt = pager.next_url(_page("runs?$skip=50"), current=current, items=1)
    assert nxt == httpx.URL("https://api.bentley.com/export/connections/c/runs?$skip=50")
    assert pager.next_url(_page(None), current=nxt, items=1) is None


def test_pager_stops_on_a_repeated_url_even_if_encoded_differently() -> None:
    pager = _pager()
    current = BASE.join("export/connections/c/runs")
    first = pager.next_url(_page(f"{current}?$skip=50&$top=50"), current=current, items=1)
    assert first is not None
    with pytest.raises(PagingError) as info:
        pager.next_url(_page(f"{current}?%24top=50&%24skip=50"), current=first, items=1)
    assert info.value.code == "RepeatedNextLink"


def test_pager_stops_on_an_empty_page_with_a_next_link() -> None:
    pager = _pager()
    with pytest.raises(PagingError) as info:
        pager.next_url(_page(f"{BASE}x?$skip=1"), current=BASE, items=0)
    assert info.value.code == "EmptyPageWithNextLink"


def test_pager_stops_at_the_page_cap() -> None:
    pager = _pager(max_pages=2)
    current = BASE
    current = pager.next_url(_page(f"{BASE}x?$skip=1"), current=current, items=1) or BASE
    with pytest.raises(PagingError) as info:
        pager.next_url(_page(f"{BASE}x?$skip=2"), current=current, items=1)
    assert info.value.code == "PageCapReached"


def test_pager_yields_a_run_seen_on_two_pages_once() -> None:
    pager = _pager()
    assert pager.fresh([{"id": "a"}, {"id": "b"}]) == [{"id": "a"}, {"id": "b"}]
    assert pager.fresh([{"id": "b"}, {"id": "c"}, {"noid": 1}]) == [{"id": "c"}, {"noid": 1}]
