"""Bentley's public error catalogue, shipped as a dated snapshot (see snapshot/SOURCE.md)."""

from pipeline.catalog.load import (
    ERROR_CATALOG_SCHEMA,
    SNAPSHOT_DIR,
    CatalogEntry,
    CatalogError,
    error_catalog_table,
    read_catalogs,
    replace_error_catalog,
)

__all__ = [
    "ERROR_CATALOG_SCHEMA",
    "SNAPSHOT_DIR",
    "CatalogEntry",
    "CatalogError",
    "error_catalog_table",
    "read_catalogs",
    "replace_error_catalog",
]
