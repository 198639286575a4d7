"""Task errors in Bentley's vocabulary: keys, systems, phases, categories and links from the
shipped catalogue, sent as unreliably as the real API sends them, plus a few unknown keys."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from pipeline.catalog import CatalogEntry, read_catalogs
from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.world import World

FAILED = ("Error", "TimedOut")


def catalogue() -> dict[str, CatalogEntry]:
    """A task error's entry: the exporter's for its key, else the connector one."""
    entries: dict[str, CatalogEntry] = {}
    for catalog in reversed(read_catalogs()):  # connector first, exporter overwrites
        entries.update({e.description_key: e for e in catalog.entries})
    return entries


@pytest.fixture(scope="module")
def tasks() -> list[dict[str, Any]]:
    world = World(SimulatorConfig(seed=3, connections=10, runs_per_connection=200))
    found = []
    for conn in world.connections:
        for run in map(orjson.loads, world.page(conn, 0, 10_000)[0]):
            found.extend(t for job in run["jobs"] for t in job["tasks"] if "error" in t)
    return found


def errors(tasks: list[dict[str, Any]], failed: bool | None = None) -> Iterator[dict[str, Any]]:
    for task in tasks:
        if failed is None or (task["result"] in FAILED) == failed:
            yield task["error"]


def test_description_keys_come_from_the_catalogue_with_its_descriptions(
    tasks: list[dict[str, Any]],
) -> None:
    entries = catalogue()
    keys = Counter(e["descriptionKey"] for e in errors(tasks))
    known = {k for k in keys if k in entries}
    assert len(known) >= 40, "the tail of the catalogue should show up on warnings"
    assert sum(keys[k] for k in known) > 0.9 * sum(keys.values())
    for error in errors(tasks):
        entry = entries.get(error["descriptionKey"])
        if entry is not None:
            # Templates ("aborted in phase %s [%s]") arrive filled in.
            pattern = re.escape(entry.description).replace("%s", ".+")
            assert re.fullmatch(pattern, error["description"]), error
    # The most common failure reads like the published example.
    top = Counter(e["errorCode"] for e in errors(tasks, failed=True)).most_common(1)[0][0]
    assert top == "TAE_BRW_1000"
    assert entries["FailedToExport"].description == "Failed to export your file."


def test_failed_tasks_carry_a_few_keys_systems_and_phases_in_no_catalogue(
    tasks: list[dict[str, Any]],
) -> None:
    entries = catalogue()
    systems = {s.lower(): phases for c in read_catalogs() for s, phases in c.systems.items()}
    phases = {p for ps in systems.values() for p in ps}
    failed = list(errors(tasks, failed=True))
    unknown_keys = {e["descriptionKey"] for e in failed} - entries.keys()
    assert 1 <= len(unknown_keys) <= 3, unknown_keys
    sent_systems = {e["system"] for e in failed if e["system"] is not None}
    sent_phases = {e["phase"] for e in failed if e["phase"] is not None}
    # Real payloads spell the exporter's system `Exporter`; the catalogue says `exporter`.
    assert "Exporter" in sent_systems and "cloud_orchestrator" in sent_systems
    assert {s for s in sent_systems if s.lower() not in systems} == {"export_scheduler"}
    assert {p for p in sent_phases if p not in phases} == {"license_check"}
    assert {"export_file", "download_imodel", "internal_server_error"} <= sent_phases


def test_fixability_category_and_links_are_sent_as_unreliably_as_the_real_api(
    tasks: list[dict[str, Any]],
) -> None:
    entries = catalogue()
    sent = [
        (e, entries[e["descriptionKey"]]) for e in errors(tasks) if e["descriptionKey"] in entries
    ]
    links = Counter(
        "empty" if e["kbArticleLink"] == "" else "null" if e["kbArticleLink"] is None else "link"
        for e, _ in sent
    )
    assert links["empty"] > links["link"] > 0 and links["null"] > 0
    assert all(e["kbArticleLink"] == entry.kb_article_link for e, entry in sent if
               e["kbArticleLink"])  # fmt: skip
    fixability = Counter(
        "null" if e["canUserFix"] is None else e["canUserFix"] == entry.can_user_fix
        for e, entry in sent
    )
    assert fixability[True] > fixability["null"] > 0
    assert fixability[False] > 0, "the API sometimes disagrees with the catalogue"
    assert all(e["category"] in (entry.category, "") for e, entry in sent)
    assert any(e["category"] == "" for e, _ in sent)
    assert any(entry.can_user_fix for _, entry in sent) and any(
        e["kbArticleLink"] for e, entry in sent if entry.can_user_fix
    )


def test_a_key_in_both_catalogues_is_sent(tasks: list[dict[str, Any]]) -> None:
    exporter, connector = read_catalogs()
    both = {e.description_key for e in exporter.entries} & {
        e.description_key for e in connector.entries
    }
    assert both & {e["descriptionKey"] for e in errors(tasks, failed=True)}
