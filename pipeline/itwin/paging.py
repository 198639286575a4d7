"""Following ``_links.next.href`` safely: link repair, origin check, loop guard, dedupe.

Paging is a small object with explicit state (URLs and ids seen, pages fetched)
that decides where the next page is, or that there is none, or that paging must
stop because the service is misbehaving. The token only ever goes to the origin
of the configured base URL, so a next link elsewhere is refused before sending.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import httpx

from pipeline.itwin.errors import PagingError

logger = logging.getLogger("pipeline.itwin")

_DEFAULT_PORTS = {"http": 80, "https": 443}
# ".../runs&$skip=50&$top=50": an "&" where the "?" belongs, and no "/" after it.
_MALFORMED_QUERY = re.compile(r"^(?P<path>[^?#]*?)&(?P<query>[^/?#]*=[^/?#]*)$")


def normalize_next_link(href: str) -> str:
    """Repair the published malformed next link; leave every other link as it is."""
    if "?" in href:
        return href
    match = _MALFORMED_QUERY.match(href)
    if match is None:
        return href
    return f"{match['path']}?{match['query']}"


def origin_key(url: httpx.URL) -> tuple[str, str, int | None]:
    """(scheme, host, port) with default ports made explicit, so 443 equals no port."""
    scheme = url.scheme.lower()
    return scheme, url.host.lower(), url.port or _DEFAULT_PORTS.get(scheme)


def origin_text(url: httpx.URL) -> str:
    """The origin as people write it, for error messages (never any path or query)."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{host}{port}"


def check_same_origin(url: httpx.URL, base_url: httpx.URL, *, connection_id: str | None) -> None:
    """Raise PagingError naming ``url``'s origin unless it is the base URL's origin."""
    if origin_key(url) != origin_key(base_url):
        raise PagingError(
            message=(
                f"refusing to follow a next link to another origin {origin_text(url)} "
                f"(the API is {origin_text(base_url)}); the token is only sent to the API"
            ),
            code="ForeignNextLink",
            connection_id=connection_id,
            extra={"origin": origin_text(url)},
        )


def checked_start_url(start_url: str, base_url: httpx.URL, connection_id: str) -> httpx.URL:
    """A kept next link to start a read from, refused as a next link there would be."""
    try:
        url = base_url.join(start_url)
    except httpx.InvalidURL as exc:
        raise PagingError(
            message="refusing a start link that is not a URL",
            code="InvalidStartLink",
            connection_id=connection_id,
        ) from exc
    check_same_origin(url, base_url, connection_id=connection_id)
    if url.userinfo:  # would end up in log lines
        raise PagingError(
            message="refusing a start link that carries a user name or password",
            code="CredentialsInNextLink",
            connection_id=connection_id,
        )
    return url


def url_key(url: httpx.URL) -> tuple[Any, ...]:
    """A comparable form of a URL: origin, path and the decoded, sorted query pairs."""
    return (*origin_key(url), url.path, tuple(sorted(parse_qsl(url.query.decode("ascii")))))


def next_href(body: Mapping[str, Any]) -> str | None:
    """``_links.next.href`` if it is a non-empty string; absent, null or odd shapes mean none."""
    links = body.get("_links")
    nxt = links.get("next") if isinstance(links, Mapping) else None
    href = nxt.get("href") if isinstance(nxt, Mapping) else None
    return href if isinstance(href, str) and href.strip() else None


class Pager:
    """Where the next page is, refusing foreign origins and stopping loops.

    Every refusal is a PagingError raised after the pages before it were yielded,
    so callers keep what they already have and can still report the connection.
    """

    def __init__(
        self,
        first_url: httpx.URL,
        *,
        base_url: httpx.URL,
        max_pages: int,
        connection_id: str | None = None,
    ) -> None:
        self.base_url = base_url
        self.max_pages = max_pages
        self.connection_id = connection_id
        self.pages = 0
        self._seen_urls = {url_key(first_url)}
        self._seen_ids: set[str] = set()

    def next_url(
        self, body: Mapping[str, Any], *, current: httpx.URL, items: int
    ) -> httpx.URL | None:
        """The URL of the page after ``body`` (fetched from ``current``), or None at the end."""
        self.pages += 1
        href = next_href(body)
        if href is None:
            return None
        url = current.join(normalize_next_link(href.strip()))
        check_same_origin(url, self.base_url, connection_id=self.connection_id)
        if url.userinfo:  # would end up in log lines; the API never sends one
            self._stop("CredentialsInNextLink", "the next link carries a user name or password")
        if items == 0:
            self._stop("EmptyPageWithNextLink", f"an empty page still links to {url}")
        if self.pages >= self.max_pages:
            self._stop("PageCapReached", f"stopped after {self.pages} pages (max_pages)")
        key = url_key(url)
        if key in self._seen_urls:
            self._stop("RepeatedNextLink", f"the next link {url} was already fetched")
        self._seen_urls.add(key)
        return url

    def fresh(self, items: list[Any]) -> list[Any]:
        """Drop items whose id an earlier page already yielded (offset drift while paging)."""
        out = []
        for item in items:
            item_id = item.get("id") if isinstance(item, Mapping) else None
            if isinstance(item_id, str):
                if item_id in self._seen_ids:
                    logger.info(
                        "dropping run/connection %s seen on an earlier page (connection %s)",
                        item_id,
                        self.connection_id,
                    )
                    continue
                self._seen_ids.add(item_id)
            out.append(item)
        return out

    def _stop(self, code: str, why: str) -> None:
        raise PagingError(
            message=f"paging stopped: {why}", code=code, connection_id=self.connection_id
        )
