"""Hypothesis strategies for hostile run payloads: mostly well typed, sometimes anything."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

NOW = datetime(2024, 5, 1, tzinfo=UTC)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(
        ["2024-01-01T00:00:00.1234567Z", "2024-01-01T00:00:00+02:00", "Completed", "Cancelled"]
    ),
)
values = st.recursive(
    scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
    max_leaves=6,
)


def maybe(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a well-typed value (or null), sometimes anything at all."""
    return st.integers(0, 19).flatmap(lambda n: values if n == 0 else st.none() if n == 1 else good)


stamps = st.sampled_from(
    ["2024-01-01T00:00:00.1234567Z", "2024-01-01T00:00:00+02:00", "2023-12-31T23:59:59.5Z"]
)
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "id": st.text("abcdefghé🚀", min_size=1, max_size=8),
    "startDateTime": stamps,
    "endDateTime": stamps,
    "state": st.sampled_from(["Completed", "Executing"]),
    "result": st.sampled_from(["Success", "Cancelled", "Error"]),
    "retryAttempts": st.integers(0, 5),
    "errorCode": st.text(max_size=5),
    "bridgeExitCode": st.integers(-(2**63), 2**63 - 1),
    "canUserFix": st.booleans(),
    "connectionId": st.just("c"),
}


def entity(
    fields: list[str], children: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[Any]:
    known = {f: maybe(FIELDS[f]) for f in fields}
    for key, child in children.items():
        known[key] = maybe(child)
    optional = {**known, "unknownField": values}
    return maybe(st.fixed_dictionaries({"id": maybe(FIELDS["id"])}, optional=optional))


errors = entity(["errorCode", "bridgeExitCode", "canUserFix"], {})
tasks = entity(["startDateTime", "endDateTime", "retryAttempts", "result"], {"error": errors})
jobs = entity(["startDateTime", "state", "result"], {"tasks": st.lists(tasks, max_size=3)})
runs = entity(
    ["startDateTime", "endDateTime", "state", "result", "connectionId"],
    {"jobs": st.lists(jobs, max_size=3)},
)
