"""The ASGI application: routing, auth, rate limit and fault delivery over the world's data.

Written as a bare ASGI callable rather than on a framework because faults need byte-level
control of delivery (drip, cut bodies, resets) and the hot path should not copy bodies.
"""

from __future__ import annotations

import asyncio
import math
import re
import socket
import struct
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from pipeline.simulator import responses as r
from pipeline.simulator.auth import TokenStore
from pipeline.simulator.config import Faults, SimulatorConfig
from pipeline.simulator.faults import (
    PLATFORM_WAIT_HEADER,
    Fault,
    RateLimiter,
    draw,
    rate_limit_headers,
    retry_after_header,
)
from pipeline.simulator.world import Connection, World

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


@dataclass
class RecordedRequest:
    """One request as received; `status` is filled in once answered (0: connection dropped).

    `path` is the raw path as sent (percent-escapes kept, to see exactly what arrived);
    `query` is percent-decoded for reading (`$top=2`), `raw_query` as sent (`%24top=2`).
    """

    method: str
    path: str
    query: str
    headers: dict[str, str]
    raw_query: str = ""
    at: float = field(default_factory=time.time)
    status: int | None = None
    fault: str | None = None


class SimulatorApp:
    """Serves the token endpoint and the four Export API calls."""

    def __init__(
        self,
        config: SimulatorConfig,
        world: World,
        requests: list[RecordedRequest],
        transports: dict[Any, asyncio.Transport],
    ) -> None:
        self.config = config
        self.world = world
        self.faults: Faults = config.faults
        self.tokens = TokenStore(config, lambda: time.monotonic() + world.advanced_seconds)
        self.requests = requests
        self._transports = transports  # (host, port) of the client -> its transport
        self._limiter = RateLimiter()
        self._hourly_limiter = RateLimiter()
        self._attempts: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw_path = scope["raw_path"].decode("latin-1")
        query = scope["query_string"].decode("latin-1")
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        record = RecordedRequest(scope["method"], raw_path, unquote(query), headers, query)
        self.requests.append(record)
        faults = self.faults
        if faults.latency_s > 0:
            await asyncio.sleep(faults.latency_s)
        if raw_path == "/connect/token":
            reply = await self._token(scope, receive, headers)
            await self._deliver(send, reply, record)
            return
        await self._api(scope, send, record)

    async def _api(self, scope: Scope, send: Send, record: RecordedRequest) -> None:
        """Answer an Export API call: auth, rate limit, route, then the drawn faults."""
        faults = self.faults
        url = f"{record.path}?{record.raw_query}"
        attempt = self._attempts.get(url, 0)
        self._attempts[url] = attempt + 1
        chosen = draw(faults, url, attempt)
        fault = chosen.fault
        limit_headers: list[tuple[bytes, bytes]] = []
        reply = self._authorize_and_limit(record.headers, limit_headers)
        if reply is None:
            if fault in (Fault.ERROR_5XX, Fault.DROP_BEFORE):
                reply = r.Reply(200, b"")  # never sent: spare the rendering
            else:
                reply = self._route(record.method, record.path, record.raw_query, record.headers)
            reply.headers.extend(limit_headers)
        if chosen.slow:
            await asyncio.sleep(faults.slow_seconds)
        if fault is Fault.ERROR_5XX:
            reply = r.server_error((500, 502, 503, 504)[int(chosen.rng.random() * 4)])
            if reply.status == 503 and chosen.rng.random() < 0.5:
                reply.headers.append((b"retry-after", b"1"))  # gateways sometimes say when
        elif fault in (Fault.TRUNCATED, Fault.NON_JSON, Fault.DRIP) and reply.status != 200:
            fault = None
        record.fault = fault.value if fault else None
        if fault is Fault.TRUNCATED:
            cut = max(1, int(len(reply.body) * (0.1 + 0.8 * chosen.rng.random())))
            reply.body = reply.body[:cut]
        elif fault is Fault.NON_JSON:
            reply = r.Reply(200, r.HTML_ERROR_PAGE, r.HTML_TYPE)
        if fault in (Fault.DROP_BEFORE, Fault.DROP_MID):
            await self._drop(scope, send, reply, record, fault, chosen.rng.random() < 0.5)
        elif fault is Fault.DRIP:
            await self._drip(send, reply, record)
        else:
            await self._deliver(send, reply, record)

    # -- auth and routing -------------------------------------------------------------------

    async def _token(self, scope: Scope, receive: Receive, headers: dict[str, str]) -> r.Reply:
        if scope["method"] != "POST":
            return r.method_not_allowed()
        body = await _read_body(receive)
        if self.faults.token_endpoint_failures > 0:
            self.faults.token_endpoint_failures -= 1
            return r.server_error(503)
        if self.faults.token_endpoint_throttled_s is not None:
            return self._throttled(1, self.faults.token_endpoint_throttled_s)
        status, payload = self.tokens.issue(body, headers.get("authorization"))
        return r.json_reply(status, payload, [(b"cache-control", b"no-store")])

    def _authorize_and_limit(
        self, headers: dict[str, str], limit_headers: list[tuple[bytes, bytes]]
    ) -> r.Reply | None:
        """A 401 or 429 answer, or None; fills `limit_headers` for answers that pass the limit."""
        auth = headers.get("authorization")
        if auth is None:
            return r.missing_header()
        scheme, _, token = auth.partition(" ")
        client = self.tokens.client_of(token.strip()) if scheme.lower() == "bearer" else None
        if client is None:
            return r.invalid_token()
        per_hour = self.faults.rate_limit_per_hour
        if per_hour is not None:
            allowed, _, wait = self._hourly_limiter.check(client, per_hour / 60.0, 3600.0)
            if not allowed:
                return self._throttled(per_hour, wait)
        limit = self.faults.rate_limit_per_minute
        if limit is None:
            return None
        allowed, remaining, wait = self._limiter.check(
            client, limit, self.faults.rate_limit_window_s
        )
        if allowed:
            limit_headers.extend(rate_limit_headers(limit, remaining, wait))
            return None
        return self._throttled(limit, wait)

    def _throttled(self, limit: float, wait: float) -> r.Reply:
        headers = rate_limit_headers(limit, 0, wait)
        headers.append((PLATFORM_WAIT_HEADER, str(max(1, math.ceil(wait))).encode()))
        value = retry_after_header(self.faults.retry_after, wait)
        if value is not None:
            headers.append((b"retry-after", value.encode("latin-1")))
        return r.too_many_requests(headers)

    def _route(self, method: str, path: str, query: str, headers: dict[str, str]) -> r.Reply:
        parts = path.split("/")
        if len(parts) < 3 or parts[1] != "export" or parts[2] != "connections":
            return r.route_not_found()
        if method != "GET":
            return r.method_not_allowed()
        params = dict(parse_qsl(query, keep_blank_values=True))
        origin = _origin(headers)
        if len(parts) == 3:
            return self._connections_of(params, origin)
        conn_id = parts[3]
        if not _ID.fullmatch(conn_id):
            return r.invalid_request(
                "InvalidExportConnectionRequest"
                if len(parts) == 4
                else "InvalidConnectionRunRequest",
                ("InvalidValue", "Provided connectionId value is not valid.", "connectionId"),
            )
        conn_reply = self._connection_access(conn_id)
        if conn_reply is not None:
            return conn_reply
        conn = self.world.connections[conn_id]
        if len(parts) == 4:
            return r.json_reply(200, {"connection": self._connection_body(conn, origin)})
        if parts[4] != "runs" or len(parts) > 6:
            return r.route_not_found()
        if len(parts) == 5:
            return self._runs_page(conn, params, origin)
        run_id = parts[5]
        if not _ID.fullmatch(run_id):
            return r.invalid_request(
                "InvalidConnectionRunRequest",
                ("InvalidValue", "Provided runId value is not valid.", "runId"),
            )
        body = self.world.run(conn_id, run_id)
        if body is None:
            return r.run_not_found()
        return r.Reply(200, b'{"run":' + body + b"}")

    def _connection_access(self, conn_id: str) -> r.Reply | None:
        faults = self.faults
        if conn_id in faults.unknown_connections or conn_id not in self.world.connections:
            return r.connection_not_found()
        if conn_id in faults.forbidden_connections:
            return r.forbidden()
        if conn_id in faults.permanent_429_connections:
            return self._throttled(self.faults.rate_limit_per_minute or 500, 1.0)
        if conn_id in faults.permanent_5xx_connections:
            return r.server_error(503)
        return None

    def _paging(self, params: dict[str, str], code: str) -> tuple[int, int] | r.Reply:
        cap = self.config.page_cap
        try:
            top = int(params.get("$top", cap))
            skip = int(params.get("$skip", 0))
        except ValueError:
            top = skip = -1
        if top < 1 or skip < 0:
            return r.invalid_request(
                code, ("InvalidValue", "Provided $top or $skip value is not valid.", "$top")
            )
        return skip, min(top, cap)

    def _runs_page(self, conn: Connection, params: dict[str, str], origin: str) -> r.Reply:
        paging = self._paging(params, "InvalidConnectionRunRequest")
        if isinstance(paging, r.Reply):
            return paging
        skip, top = paging
        runs, total = self.world.page(conn.id, skip, top)
        base = f"{origin}/export/connections/{conn.id}/runs"
        link_origin = self.faults.foreign_next_link
        next_base = base if link_origin is None else base.replace(origin, link_origin, 1)
        sep = "&" if self.config.malformed_next_links else "?"

        def href(at: str, s: int) -> dict[str, str]:
            return {"href": f"{at}{sep}$skip={s}&$top={top}"}

        links: dict[str, Any] = {"self": href(base, skip)}
        if skip > 0:
            links["prev"] = href(base, max(0, skip - top))
        if skip + top < total:
            links["next"] = href(next_base, skip + top)
        return r.Reply(200, r.runs_page(runs, links))

    def _connections_of(self, params: dict[str, str], origin: str) -> r.Reply:
        code = "InvalidExportConnectionRequest"
        imodel_id = params.get("imodelId")
        if not imodel_id:
            return r.invalid_request(
                code, ("MissingRequiredParameter", "imodelId was not provided.", "imodelId")
            )
        if not _ID.fullmatch(imodel_id):
            return r.invalid_request(
                code, ("InvalidValue", "Provided imodelId value is not valid.", "imodelId")
            )
        conns = self.world.imodels.get(imodel_id)
        if conns is None:
            return r.imodel_not_found()
        paging = self._paging(params, code)
        if isinstance(paging, r.Reply):
            return paging
        skip, top = paging
        base = f"{origin}/export/connections?imodelId={quote(imodel_id)}"
        links: dict[str, Any] = {"self": {"href": f"{base}&$skip={skip}&$top={top}"}}
        if skip > 0:
            links["prev"] = {"href": f"{base}&$skip={max(0, skip - top)}&$top={top}"}
        if skip + top < len(conns):
            next_base = base
            if self.faults.foreign_next_link is not None:
                next_base = base.replace(origin, self.faults.foreign_next_link, 1)
            links["next"] = {"href": f"{next_base}&$skip={skip + top}&$top={top}"}
        page = [self._connection_body(c, origin) for c in conns[skip : skip + top]]
        return r.json_reply(200, {"connections": page, "_links": links})

    def _connection_body(self, conn: Connection, origin: str) -> dict[str, Any]:
        links: dict[str, Any] = {
            "iModel": {"href": f"{origin}/imodels/{conn.imodel_id}"},
            "iTwin": {"href": f"{origin}/itwins/{conn.itwin_id}"},
        }
        last = self.world.last_run_id(conn.id)
        if last is not None:
            links["lastRun"] = {"href": f"{origin}/export/connections/{conn.id}/runs/{last}"}
        return {
            "id": conn.id,
            "iModelId": conn.imodel_id,
            "iTwinId": conn.itwin_id,
            "displayName": conn.display_name,
            "authenticationType": conn.authentication_type,
            "_links": links,
        }

    # -- delivery ---------------------------------------------------------------------------

    @staticmethod
    async def _start(send: Send, reply: r.Reply, length: int) -> None:
        headers = [
            (b"content-type", reply.content_type),
            (b"content-length", str(length).encode()),
            *reply.headers,
        ]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})

    async def _deliver(self, send: Send, reply: r.Reply, record: RecordedRequest) -> None:
        record.status = reply.status
        await self._start(send, reply, len(reply.body))
        await send({"type": "http.response.body", "body": reply.body})

    async def _drip(self, send: Send, reply: r.Reply, record: RecordedRequest) -> None:
        record.status = reply.status
        body = reply.body
        # At most about 20 chunks, so a drip is slow but ends in bounded time.
        chunk = max(self.faults.drip_chunk_bytes, len(body) // 20 + 1)
        await self._start(send, reply, len(body))
        for at in range(0, len(body), chunk):
            more = at + chunk < len(body)
            await send(
                {"type": "http.response.body", "body": body[at : at + chunk], "more_body": more}
            )
            if more:
                await asyncio.sleep(self.faults.drip_interval_s)

    async def _drop(
        self,
        scope: Scope,
        send: Send,
        reply: r.Reply,
        record: RecordedRequest,
        fault: Fault,
        reset: bool,
    ) -> None:
        record.status = 0
        transport = self._transports.get(scope.get("client"))
        if transport is None:  # cannot happen under SimulatorServer; answer something broken
            await self._deliver(send, r.server_error(502), record)
            return
        if fault is Fault.DROP_MID:
            await self._start(send, reply, len(reply.body))
            await send(
                {
                    "type": "http.response.body",
                    "body": reply.body[: len(reply.body) // 2],
                    "more_body": True,
                }
            )
        sock = transport.get_extra_info("socket")
        if reset and sock is not None:
            # SO_LINGER 0 turns the close into a TCP reset ("connection reset by peer").
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        await asyncio.sleep(0)  # let the server see the connection lost before we return


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _origin(headers: dict[str, str]) -> str:
    """Our origin as the client addressed it, so links match the base URL it was given."""
    host = headers.get("host", "")
    return f"http://{host}" if host else "http://127.0.0.1"
