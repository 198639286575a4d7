"""The simulated service's export connections and the iModels they belong to, from the seed."""

from __future__ import annotations

import random
from dataclasses import dataclass

from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.generate import uuid_from

# Display names are what a person types, so untrusted text: one carries quotes, angle
# brackets, an apostrophe and an emoji on purpose (reports must escape them).
_NAMES = (
    "Riverside Bridge – IFC nightly",
    'Tower "B" <East Wing> 🏗️ IFC export',
    "Plant Area 300 – PDF previews",
    "St. Mary's Hospital – Revit to IFC",
    "Metro Line 4 LandXML",
    "Harbour Terminal – coordination model",
    "Wind Farm Substation IFC",
    "Campus North – weekly IFC",
)
_ITWINS = 2  # projects the iModels belong to


@dataclass(frozen=True)
class Connection:
    """An export connection; `direct` ones are what a user lists, the rest are found by iModel."""

    index: int
    id: str
    imodel_id: str
    itwin_id: str
    display_name: str
    authentication_type: str
    direct: bool


def build_connections(
    cfg: SimulatorConfig,
) -> tuple[dict[str, Connection], dict[str, list[Connection]]]:
    """The connections by id, and each iModel's connections, in index order."""
    connections: dict[str, Connection] = {}
    imodels: dict[str, list[Connection]] = {}
    # Ids are drawn in the order they always were, so a seed keeps its connection ids
    # (and the faults drawn from their URLs); the newer details come from other streams.
    rng = random.Random(f"connections:{cfg.seed}")
    details = random.Random(f"connection-details:{cfg.seed}")
    itwin_ids = [uuid_from(rng.getrandbits(128))]
    imodel_ids = [uuid_from(rng.getrandbits(128)) for _ in range(cfg.imodels)]
    itwin_ids += [uuid_from(details.getrandbits(128)) for _ in range(_ITWINS - 1)]
    direct_count = (cfg.connections + 1) // 2 if imodel_ids else cfg.connections
    for index in range(cfg.connections):
        conn_id = uuid_from(rng.getrandbits(128))
        # Every connection exports one iModel; without discoverable iModels, each
        # connection's iModel is its own.
        imodel = (
            imodel_ids[index % len(imodel_ids)]
            if imodel_ids
            else uuid_from(details.getrandbits(128))
        )
        itwin = itwin_ids[(index % len(imodel_ids) if imodel_ids else index) % _ITWINS]
        name = _NAMES[index % len(_NAMES)]
        if index >= len(_NAMES):
            name = f"{name} ({index // len(_NAMES) + 1})"
        conn = Connection(
            index=index,
            id=conn_id,
            imodel_id=imodel,
            itwin_id=itwin,
            display_name=name,
            authentication_type="Service" if rng.random() < 0.3 else "User",
            direct=index < direct_count,
        )
        connections[conn.id] = conn
        imodels.setdefault(imodel, []).append(conn)
    return connections, imodels
