"""The task errors the simulator sends, in Bentley's vocabulary (the shipped error catalogue).

Real failure data is long-tailed: a few kinds cause most failed tasks. The head below is
written by hand (error codes as real payloads carry them, a system and phase each from the
catalogue's lists); descriptions, categories, fixability and knowledge-base links come from
the catalogue itself. Every other catalogue entry forms the tail, seen only on warnings
(errors on successful tasks), so that a rare kind never looks "new" by chance in a trend.
A few kinds carry keys, systems or phases in no catalogue, as a newer service would.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate

from pipeline.catalog import CatalogEntry, read_catalogs


@dataclass(frozen=True)
class ErrorKind:
    """One error code and the fields the API sends with it (before per-task quirks)."""

    code: str
    message: str
    details: str
    exit_codes: tuple[int, ...]
    system: str | None
    phase: str | None
    category: str
    description_key: str
    description: str
    kb_article_link: str | None  # the catalogue's link; the API mostly sends ""
    can_user_fix: bool  # what the API says, which may disagree with the catalogue
    catalog: str | None  # the catalogue holding the key, None when in none


_CATALOGS = read_catalogs()
ENTRIES: dict[tuple[str, str], CatalogEntry] = {
    (e.catalog, e.description_key): e for c in _CATALOGS for e in c.entries
}
CATALOG_SYSTEMS: dict[str, tuple[str, ...]] = {
    system: phases for c in _CATALOGS for system, phases in c.systems.items()
}

# code, catalogue, descriptionKey, system, phase, message, details, exit codes.
# "Exporter" is how real payloads spell the catalogue's `exporter` system.
_HEAD: tuple[tuple[str, str, str, str, str, str, str, tuple[int, ...]], ...] = (
    ("TAE_BRW_1000", "exporter", "FailedToExport", "Exporter", "export_file",
     "Failed to orchestrate file processing.",
     "Error exit code received from bridge wrapper. Details from wrapper: ''.", (-7002, -7001, 1)),
    ("TAE_BRG_1000", "connector", "RunOrchestrationError", "cloud_orchestrator",
     "internal_server_error", "Failed to process.",
     "Error exit code received from bridge wrapper.", (4294967295, 4294967294, -1)),
    ("TAE_EXP_2001", "exporter", "FailedToDownloadImodel", "Exporter", "download_imodel",
     "Failed to download the iModel.", "Changeset download did not complete.", (-7020,)),
    ("TAE_TMO_1000", "connector", "JobAborted", "cloud_orchestrator", "master",
     "The task exceeded its time limit.",
     "Task was stopped after running longer than the allowed duration.", (-9, 137)),
    ("TAE_EXP_3001", "exporter", "ErrorInUploading", "Exporter", "upload_output_file",
     "Failed to upload the output file.", "The storage service answered 503.", (-7030,)),
    ("TAE_EXP_2002", "exporter", "ExcessiveElements", "Exporter", "download_imodel",
     "The iModel is too large to export.", "Element count above the exporter's limit.", (3,)),
    ("TAE_ORC_1001", "connector", "ExternalCommunicationError", "cloud_orchestrator",
     "external_to_run_execution", "A dependent service did not answer.",
     "Connection reset by peer.", (-104,)),
    ("TAE_EXP_1001", "exporter", "FailedToStartImodelHost", "Exporter", "initialization",
     "Failed to start the iModel host.", "", (-1, 0)),
    ("TAE_EXP_2003", "exporter", "NoReadPermission", "Exporter", "download_imodel",
     "The connection's user cannot read the iModel.", "Permission check failed.", (-3,)),
    ("TAE_EXP_5001", "", "ExportQuotaExceeded", "Exporter", "export_file",
     "The export quota of the iTwin is used up.", "Quota service refused the export.", (-7050,)),
    ("TAE_ORC_1002", "connector", "IModelAccessForbidden", "cloud_orchestrator",
     "initialization", "Access to the iModel was forbidden.", "", (-403,)),
    ("TAE_EXP_2005", "exporter", "IModelNotFound", "Exporter", "download_imodel",
     "The iModel was not found.", "", (-404,)),
    ("TAE_SCH_5002", "", "OutputFormatNotLicensed", "export_scheduler", "license_check",
     "The output format is not licensed for this iTwin.", "", (-7070,)),
)  # fmt: skip

# The story's new kind: a validator deployed in the last week, with a key, a phase and a
# category the snapshot does not know yet (the drift check should name them).
NEW_KIND_CODE = "TAE_EXP_6001"
_NEW = (
    NEW_KIND_CODE, "", "IfcSchemaValidationFailed", "Exporter", "validate_output",
    "The exported IFC file failed schema validation.", "IFC4 schema check: 3 violations.",
    (-7080,),
)  # fmt: skip
# The story's rising kind: folder permissions going wrong for more and more users. It is
# drawn only through the story (a small steady share, then a larger one), not the head.
RISING_KIND_CODE = "TAE_EXP_3002"
_RISING = (
    RISING_KIND_CODE, "exporter", "NoWritePermission", "Exporter", "upload_output_file",
    "Cannot write to the output folder.", "The folder denies write access.", (-13,),
)  # fmt: skip
TIMEOUT_KIND_CODE = "TAE_TMO_1000"

# What the API says about fixability where it disagrees with the catalogue.
_API_FIXABILITY = {"ErrorInUploading": True, "NoReadPermission": False}
# Hand-given fields of the keys in no catalogue.
_UNCATALOGUED = {
    "ExportQuotaExceeded": ("configuration", "The export quota is used up.", True),
    "OutputFormatNotLicensed": ("licensing", "The output format is not licensed.", True),
    "IfcSchemaValidationFailed": ("validation", "The output failed validation.", False),
}


def _kind(
    code: str,
    catalog: str,
    key: str,
    system: str,
    phase: str,
    message: str,
    details: str,
    exit_codes: tuple[int, ...],
) -> ErrorKind:
    entry = ENTRIES.get((catalog, key))
    if entry is None:
        if catalog:
            raise LookupError(f"{key} is not in the {catalog} catalogue of the snapshot")
        category, description, fixable = _UNCATALOGUED[key]
        link = None
    else:
        category, description, link = entry.category, entry.description, entry.kb_article_link
        fixable = _API_FIXABILITY.get(key, entry.can_user_fix)
        # Some descriptions are templates; the service fills them in, here with the phase
        # and then the code.
        while "%s" in description:
            description = description.replace("%s", phase, 1).replace("%s", code, 1)
    return ErrorKind(
        code, message, details, exit_codes, system, phase, category, key, description,
        link, fixable, catalog or None,
    )  # fmt: skip


def _tail(taken: set[str]) -> tuple[ErrorKind, ...]:
    """Every other catalogue entry, with a code, system and phase of its catalogue."""
    kinds = []
    for number, (catalog, key) in enumerate(sorted(k for k in ENTRIES if k[1] not in taken)):
        system = "Exporter" if catalog == "exporter" else "connector"
        phases = CATALOG_SYSTEMS["exporter" if catalog == "exporter" else "connector"]
        phase = phases[number % len(phases)]
        prefix = "EXP" if catalog == "exporter" else "CNR"
        kinds.append(
            _kind(f"TAE_{prefix}_{7000 + number}", catalog, key, system, phase,
                  f"{key}.", f"Reported by {system} during {phase}.", (-(7100 + number % 50),))
        )  # fmt: skip
    return tuple(kinds)


HEAD_KINDS: tuple[ErrorKind, ...] = tuple(_kind(*fields) for fields in _HEAD)
NEW_KIND: ErrorKind = _kind(*_NEW)
RISING_KIND: ErrorKind = _kind(*_RISING)
ERROR_KINDS: tuple[ErrorKind, ...] = (
    *HEAD_KINDS,
    NEW_KIND,
    RISING_KIND,
    *_tail({k.description_key for k in (*HEAD_KINDS, RISING_KIND)}),
)
KIND_INDEX: dict[str, int] = {kind.code: i for i, kind in enumerate(ERROR_KINDS)}

# Zipf-like weights (rank ** -1.1) over the head for failed tasks: the first kinds dominate;
# a floor keeps the last ones common enough to be seen in every four weeks of the demo.
FAILURE_WEIGHTS: tuple[float, ...] = tuple(
    accumulate(rank**-1.1 + 0.05 for rank in range(1, len(HEAD_KINDS) + 1))
)
# Warnings draw from the head and the tail (everything but the story's new kind).
_WARNABLE = [i for i, kind in enumerate(ERROR_KINDS) if kind is not NEW_KIND]
WARNING_KINDS: tuple[int, ...] = tuple(_WARNABLE)
WARNING_WEIGHTS: tuple[float, ...] = tuple(
    accumulate(1.0 / (rank**1.1) for rank in range(1, len(_WARNABLE) + 1))
)

# Pre-built error objects (without the per-occurrence quirks) keep generation cheap.
ERROR_BODIES: tuple[dict[str, object], ...] = tuple(
    {
        "errorCode": kind.code,
        "message": kind.message,
        "details": kind.details,
        "bridgeExitCode": 0,
        "system": kind.system,
        "phase": kind.phase,
        "category": kind.category,
        "descriptionKey": kind.description_key,
        "description": kind.description,
        "kbArticleLink": "",
        "canUserFix": kind.can_user_fix,
    }
    for kind in ERROR_KINDS
)
