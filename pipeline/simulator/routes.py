"""The Export API's routes: which call a path is, its checks, and the bodies it answers with."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, quote

from pipeline.simulator import responses as r
from pipeline.simulator.config import Faults, SimulatorConfig
from pipeline.simulator.gate import throttled
from pipeline.simulator.world import Connection, World

_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


class ExportRoutes:
    """Answers the four Export API calls from the world's data (auth already passed)."""

    def __init__(self, config: SimulatorConfig, world: World) -> None:
        self.config = config
        self.world = world
        self.faults: Faults = config.faults

    def route(self, method: str, path: str, query: str, headers: dict[str, str]) -> r.Reply:
        """The answer to one API call, before faults are applied to its delivery."""
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
            return throttled(faults, faults.rate_limit_per_minute or 500, 1.0)
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
        sep = "&" if self.config.malformed_next_links else "?"
        links = self._page_links(origin, base, sep, skip, top, total)
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
        links = self._page_links(origin, base, "&", skip, top, len(conns))
        page = [self._connection_body(c, origin) for c in conns[skip : skip + top]]
        return r.json_reply(200, {"connections": page, "_links": links})

    def _page_links(
        self, origin: str, base: str, sep: str, skip: int, top: int, total: int
    ) -> dict[str, Any]:
        """A page's self, prev and next links (next on another origin under that fault)."""
        link_origin = self.faults.foreign_next_link
        next_base = base if link_origin is None else base.replace(origin, link_origin, 1)

        def href(at: str, s: int) -> dict[str, str]:
            return {"href": f"{at}{sep}$skip={s}&$top={top}"}

        links: dict[str, Any] = {"self": href(base, skip)}
        if skip > 0:
            links["prev"] = href(base, max(0, skip - top))
        if skip + top < total:
            links["next"] = href(next_base, skip + top)
        return links

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


def _origin(headers: dict[str, str]) -> str:
    """Our origin as the client addressed it, so links match the base URL it was given."""
    host = headers.get("host", "")
    return f"http://{host}" if host else "http://127.0.0.1"
