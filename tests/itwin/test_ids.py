"""Ids are checked before any URL exists, and encoded as exactly one path segment."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.itwin.errors import InvalidIdError
from pipeline.itwin.ids import path_segment, validate_id

BAD_IDS = [
    "",
    ".",
    "..",
    "a/b",
    "a?b",
    "a#b",
    "a%2Fb",
    "a b",
    "a\tb",
    "a\nb",
    "a\x00b",
    "a\x7fb",
    " ",
]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_ids_are_rejected_naming_the_parameter(bad: str) -> None:
    with pytest.raises(InvalidIdError) as info:
        validate_id(bad, "connection_id")
    assert info.value.parameter == "connection_id"
    assert "connection_id" in str(info.value)


def test_non_string_is_rejected() -> None:
    with pytest.raises(InvalidIdError):
        validate_id(None, "run_id")


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("fc226d0d-1647-48d7-8c11-f1f74f2d9808", "fc226d0d-1647-48d7-8c11-f1f74f2d9808"),
        (
            "VRZHoBhrnkGrAev0-_-d_xwvyrzjgaVGka5wU967Q7M",
            "VRZHoBhrnkGrAev0-_-d_xwvyrzjgaVGka5wU967Q7M",
        ),
        ("a:b&c=d", "a%3Ab%26c%3Dd"),
        ("é", "%C3%A9"),
        ("...", "..."),
    ],
)
def test_valid_ids_are_encoded_as_one_segment(raw: str, encoded: str) -> None:
    assert path_segment(raw, "connection_id") == encoded


@given(st.text(min_size=1))
def test_an_accepted_id_never_yields_a_path_separator(raw: str) -> None:
    try:
        segment = path_segment(raw, "run_id")
    except InvalidIdError:
        return
    assert "/" not in segment and "?" not in segment and "#" not in segment
    assert segment not in (".", "..")
