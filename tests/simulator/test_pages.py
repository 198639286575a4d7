"""`write_run_pages`: list-page files from the same generator the server uses."""

from __future__ import annotations

from pathlib import Path

import orjson

from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.pages import write_run_pages
from pipeline.simulator.world import World


def test_pages_shape_and_counts(tmp_path: Path) -> None:
    paths = write_run_pages(tmp_path, runs=1234, page_size=50, seed=3, connections=5)
    pages = [orjson.loads(p.read_bytes()) for p in paths]
    assert sum(len(p["runs"]) for p in pages) == 1234
    assert all(set(p) == {"runs", "_links"} for p in pages)
    assert all(len(p["runs"]) <= 50 for p in pages)
    ids = [(r["connectionId"], r["id"]) for p in pages for r in p["runs"]]
    assert len(set(ids)) == 1234
    assert len({c for c, _ in ids}) == 5
    last_pages = [p for p in pages if "next" not in p["_links"]]
    assert len(last_pages) == 5
    assert sorted(paths) == paths and all(p.suffix == ".json" for p in paths)


def test_pages_match_what_the_server_lists(tmp_path: Path) -> None:
    paths = write_run_pages(
        tmp_path, runs=80, page_size=50, seed=4, connections=2, include_connection_id=False
    )
    world = World(SimulatorConfig(seed=4, connections=2, runs_per_connection=40))
    served = [orjson.loads(r) for conn in world.connections for r in world.page(conn, 0, 50)[0]]
    written = [r for p in paths for r in orjson.loads(p.read_bytes())["runs"]]
    assert written == served
    assert all("connectionId" not in r for r in written)


def test_ndjson_holds_one_page_per_line(tmp_path: Path) -> None:
    (path,) = write_run_pages(tmp_path, runs=260, seed=1, connections=2, ndjson=True)
    lines = path.read_bytes().splitlines()
    assert path.name == "runs.ndjson" and len(lines) == 6
    assert sum(len(orjson.loads(line)["runs"]) for line in lines) == 260
    assert list(tmp_path.iterdir()) == [path]


def test_parallel_and_serial_writers_agree(tmp_path: Path) -> None:
    serial = write_run_pages(
        tmp_path / "s", runs=600, seed=2, connections=4, workers=1, ndjson=True
    )
    parallel = write_run_pages(
        tmp_path / "p", runs=600, seed=2, connections=4, workers=2, ndjson=True
    )
    assert serial[0].read_bytes() == parallel[0].read_bytes()
