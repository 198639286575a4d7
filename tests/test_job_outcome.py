"""Step failures the CLI prints are one line a user can act on, never a class name."""

from __future__ import annotations

import sys

from dagster._utils.error import serializable_error_info_from_exc_info

from pipeline.job_outcome import _root_cause
from pipeline.warehouse.store import WarehouseFileError


def _info(exc: BaseException) -> object:
    try:
        raise exc
    except BaseException:
        return serializable_error_info_from_exc_info(sys.exc_info())


def test_the_message_is_shown_without_the_exception_class() -> None:
    info = _info(WarehouseFileError("cannot write the warehouse /d/w.duckdb: /d is read-only"))
    assert _root_cause(info) == "cannot write the warehouse /d/w.duckdb: /d is read-only"


def test_an_error_without_a_message_says_where_to_look() -> None:
    line = _root_cause(_info(RuntimeError()))
    assert "without a message" in line and "-v" in line and "\n" not in line


def test_only_the_first_line_of_a_long_message() -> None:
    assert _root_cause(_info(ValueError("first line\nsecond line"))) == "first line"
