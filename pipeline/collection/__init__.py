"""Incremental collection: decide which pages and runs to fetch, and load them as they arrive."""

from pipeline.collection.collector import Collector, collect
from pipeline.collection.results import (
    CollectionResult,
    ConnectionResult,
    FanOutProgress,
    NoProgress,
    Progress,
)

__all__ = [
    "CollectionResult",
    "Collector",
    "ConnectionResult",
    "FanOutProgress",
    "NoProgress",
    "Progress",
    "collect",
]
