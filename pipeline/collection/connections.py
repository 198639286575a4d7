"""What a collection knows of its connections: their details (names, iModel, iTwin,
`lastRun`) kept in `connections`, and which connections have nothing new to read.

Details come from the iModel listing discovery already reads, or from
`GET /export/connections/{id}` for a configured connection on first sight and once its
details are a day old. A connection whose `lastRun` is stored Completed and that has no
open runs has nothing new, so an incremental collection skips its run listing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson

from pipeline.collection.loading import WarehouseGate
from pipeline.errors import ITwinRunsError
from pipeline.itwin.client import CallStats, ExportApiClient
from pipeline.itwin.errors import ApiError, InvalidIdError
from pipeline.itwin.ids import normalize_id, validate_id

log = logging.getLogger("pipeline.collection")

# Configured connections' details are fetched again once they are this old.
DETAILS_MAX_AGE = timedelta(days=1)

# API field -> column; the other fields (and a value of another type) go to `extra`.
_COLUMNS = {
    "displayName": "display_name",
    "iModelId": "imodel_id",
    "iTwinId": "itwin_id",
    "authenticationType": "authentication_type",
}
_IDS = ("imodel_id", "itwin_id")


@dataclass(frozen=True)
class ConnectionDetails:
    """One row of `connections`, from a connection object the API returned."""

    connection_id: str
    display_name: str | None
    imodel_id: str | None
    itwin_id: str | None
    authentication_type: str | None
    last_run_id: str | None
    fetched_at: datetime
    extra: str | None

    def row(self) -> dict[str, Any]:
        return asdict(self)


def parse_connection(obj: Any, fetched_at: datetime) -> ConnectionDetails | None:
    """The details of a connection object; None when it has no usable `id`.

    Nothing here raises on what the API sends: a field of an unexpected type or an
    unknown field is kept in `extra` as sent, and its column stays NULL.
    """
    if not isinstance(obj, dict):
        return None
    try:
        connection_id = normalize_id(validate_id(obj.get("id"), "id"))
    except InvalidIdError:
        return None
    columns: dict[str, str | None] = dict.fromkeys(_COLUMNS.values())
    extra: dict[str, Any] = {}
    for key, value in obj.items():
        column = _COLUMNS.get(key)
        if key == "id":
            continue
        if column is not None and isinstance(value, str):
            columns[column] = normalize_id(value) if column in _IDS else value
        else:
            extra[key] = value
    return ConnectionDetails(
        connection_id=connection_id,
        last_run_id=last_run_id(obj.get("_links")),
        fetched_at=fetched_at,
        extra=_json(extra),
        **columns,
    )


def last_run_id(links: Any) -> str | None:
    """The last path segment of `_links.lastRun.href`, or None when there is none."""
    last = links.get("lastRun") if isinstance(links, dict) else None
    href = last.get("href") if isinstance(last, dict) else None
    if not isinstance(href, str):
        return None
    try:
        segment = unquote(urlsplit(href).path.rstrip("/").rsplit("/", 1)[-1])
        return validate_id(segment, "lastRun")
    except (ValueError, InvalidIdError):
        return None


def _json(extra: dict[str, Any]) -> str | None:
    if not extra:
        return None
    try:
        return orjson.dumps(extra).decode()
    except TypeError:  # cannot come from parsed JSON; kept readable rather than lost
        return orjson.dumps(extra, default=repr).decode()


class ConnectionBook:
    """The collection's view of `connections`: details saved as they arrive, and the
    connections whose run listing an incremental collection can skip."""

    def __init__(
        self, client: ExportApiClient, gate: WarehouseGate, now: Callable[[], datetime]
    ) -> None:
        self._client = client
        self._gate = gate
        self._now = now
        self._fetched_at: dict[str, datetime | None] = {}
        self._last_runs: dict[str, str | None] = {}  # fresh this collection only
        self._completed: set[str] = set()  # connections whose last run is stored Completed
        self._names: dict[str, str] = {}

    async def save(self, details: Sequence[ConnectionDetails], known_ids: Sequence[str]) -> None:
        """Store details (e.g. the discovered ones) and a row for every known id."""
        bookkeeping = self._gate.warehouse.bookkeeping
        await self._gate.call(
            bookkeeping.connections.save_connections, [d.row() for d in details], known_ids
        )
        self._remember(details)

    async def read_state(self, connection_ids: Sequence[str]) -> None:
        """One query each, when the collection starts: details' ages, names, last runs' states."""
        bookkeeping = self._gate.warehouse.bookkeeping
        self._fetched_at = await self._gate.call(
            bookkeeping.connections.connection_fetch_times, connection_ids
        )
        stored = await self._gate.call(bookkeeping.connections.display_names, connection_ids)
        self._names = {**stored, **self._names}  # this collection's are the fresher
        known = {cid: rid for cid, rid in self._last_runs.items() if rid is not None}
        self._completed = await self._gate.call(bookkeeping.connections.completed_last_runs, known)

    async def refresh(self, connection_id: str, stats: CallStats) -> ApiError | None:
        """Fetch a connection's details when never fetched or a day old.

        Returns the API's refusal instead of raising it: the caller still reads the runs,
        then fails the connection naming the refusal (its runs are not lost for it).
        """
        if connection_id in self._last_runs:
            return None  # fetched this collection (discovered)
        fetched = self._fetched_at.get(connection_id)
        if fetched is not None and self._now() - fetched < DETAILS_MAX_AGE:
            return None
        try:
            obj = await self._client.get_connection(connection_id, stats=stats)
        except ITwinRunsError as exc:
            log.warning("the details of connection %s cannot be read: %s", connection_id, exc)
            return exc if isinstance(exc, ApiError) else ApiError(message=str(exc))
        details = parse_connection({**obj, "id": connection_id}, self._now())
        if details is None:
            return None
        bookkeeping = self._gate.warehouse.bookkeeping
        await self._gate.call(bookkeeping.connections.save_connections, [details.row()])
        self._remember([details])
        if details.last_run_id is not None:
            done = await self._gate.call(
                bookkeeping.connections.completed_last_runs, {connection_id: details.last_run_id}
            )
            self._completed |= done
        return None

    def is_quiet(self, connection_id: str, open_runs: Sequence[str]) -> bool:
        """True when the connection's fresh `lastRun` is stored Completed and none of its
        stored runs is open: its run list holds nothing this collection lacks."""
        return not open_runs and connection_id in self._completed

    def display_name(self, connection_id: str) -> str | None:
        """The connection's name as last seen (this collection or a stored one), if any."""
        return self._names.get(connection_id)

    def _remember(self, details: Sequence[ConnectionDetails]) -> None:
        for d in details:
            self._last_runs[d.connection_id] = d.last_run_id
            if d.display_name is not None:
                self._names[d.connection_id] = d.display_name
