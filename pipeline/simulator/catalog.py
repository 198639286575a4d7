"""The fixed catalogue of task error codes the simulator draws from, with a Zipf-like weighting.

Real failure data is long-tailed: a few codes cause most failures and dozens appear rarely.
Each code always carries the same phase, system, category and description, as in the service,
so grouping by code, phase or system in the reports gives stable answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate


@dataclass(frozen=True)
class ErrorKind:
    """One error code and the fixed fields the API sends with it."""

    code: str
    message: str
    details: str
    exit_codes: tuple[int, ...]
    system: str | None
    phase: str | None
    category: str
    description_key: str
    description: str
    kb_article_link: str
    can_user_fix: bool


_KB = "https://bentleysystems.service-now.com/community?id=kb_article&sysparm_article="

# The head of the distribution, hand written after the published examples.
_HEAD: tuple[ErrorKind, ...] = (
    ErrorKind(
        "TAE_BRW_1000",
        "Failed to orchestrate file processing.",
        "Error exit code received from bridge wrapper. Details from wrapper: ''.",
        (-7002, -7001, 1),
        "Exporter",
        "export_file",
        "other",
        "FailedToExport",
        "Failed to export your file.",
        "",
        False,
    ),
    ErrorKind(
        "TAE_BRG_1000",
        "Failed to process.",
        "Error exit code received from bridge wrapper.",
        (4294967295, 4294967294, -1),
        "cloud_orchestrator",
        "internal_server_error",
        "other",
        "RunOrchestrationError",
        "Failed to orchestrate Run.",
        "",
        False,
    ),
    ErrorKind(
        "TAE_SRC_2001",
        "Source file could not be opened.",
        "The file is locked by another process or is corrupt.",
        (2, 13),
        "Exporter",
        "open_source_file",
        "source_file",
        "SourceFileCorrupt",
        "The source file is corrupt or locked.",
        _KB + "KB0101231",
        True,
    ),
    ErrorKind(
        "TAE_REF_2002",
        "Missing reference file.",
        "One or more referenced files were not found in the storage location.",
        (3,),
        "Exporter",
        "resolve_references",
        "references",
        "MissingReferences",
        "Some referenced files are missing.",
        _KB + "KB0101232",
        True,
    ),
    ErrorKind(
        "TAE_AUTH_3001",
        "Could not access the storage location.",
        "The connection's user token has expired. Sign in again to refresh it.",
        (-3,),
        "auth_service",
        "acquire_token",
        "authentication",
        "ExpiredUserToken",
        "The connection's authorization has expired.",
        _KB + "KB0101240",
        True,
    ),
    ErrorKind(
        "TAE_TMO_1000",
        "The task exceeded its time limit.",
        "Task was stopped after running longer than the allowed duration.",
        (-9, 137),
        "cloud_orchestrator",
        "export_file",
        "timeout",
        "TaskTimedOut",
        "The export took too long.",
        "",
        False,
    ),
    ErrorKind(
        "TAE_SYN_4001",
        "Synchronization failed.",
        "Changeset push was rejected by the iModel hub.",
        (-7010,),
        "imodel_hub",
        "push_changes",
        "imodel",
        "PushRejected",
        "The iModel rejected the changes.",
        "",
        False,
    ),
    ErrorKind(
        "TAE_LCK_4002",
        "Could not acquire iModel lock.",
        "Another process holds the schema lock.",
        (-7011,),
        "imodel_hub",
        "acquire_locks",
        "imodel",
        "LockConflict",
        "The iModel is locked by another job.",
        _KB + "KB0101250",
        False,
    ),
    ErrorKind(
        "TAE_UNK_9999",
        "An unexpected error occurred.",
        "",
        (-1, 0),
        None,
        None,
        "other",
        "UnknownError",
        "Something went wrong.",
        "",
        False,
    ),
    ErrorKind(
        "TAE_MEM_5001",
        "Out of memory.",
        "The exporter process ran out of memory while processing elements.",
        (3221225495, -1073741801),
        "Exporter",
        "process_elements",
        "resources",
        "OutOfMemory",
        "The export ran out of memory.",
        _KB + "KB0101260",
        False,
    ),
    ErrorKind(
        "TAE_FMT_2010",
        "Unsupported file format version.",
        "The file was saved by a newer version of the authoring application.",
        (5,),
        "Exporter",
        "open_source_file",
        "source_file",
        "UnsupportedVersion",
        "The file format version is not supported.",
        _KB + "KB0101270",
        True,
    ),
    ErrorKind(
        "TAE_NET_6001",
        "Network error while downloading the source file.",
        "Connection reset by peer.",
        (-104,),
        "storage_service",
        None,
        "network",
        "DownloadFailed",
        "The source file could not be downloaded.",
        "",
        False,
    ),
)

# The tail: generated from fixed parts so the catalogue holds dozens of codes without
# dozens of hand-written entries.
_TAIL_PARTS: tuple[tuple[str, str, str, str, str, bool], ...] = (
    ("SCH", "schema_import", "Exporter", "schema", "SchemaImportFailed", False),
    ("ELM", "process_elements", "Exporter", "data", "ElementConversionFailed", False),
    ("GEO", "transform_geometry", "Exporter", "data", "GeometryInvalid", True),
    ("CRS", "reproject", "Exporter", "data", "CoordinateSystemMismatch", True),
    ("UPL", "upload_output", "storage_service", "network", "UploadFailed", False),
    ("CFG", "read_settings", "cloud_orchestrator", "configuration", "InvalidSettings", True),
    ("QUE", "schedule_job", "cloud_orchestrator", "other", "SchedulingFailed", False),
    ("DSK", "export_file", "Exporter", "resources", "DiskFull", False),
)


def _tail() -> tuple[ErrorKind, ...]:
    kinds = []
    for number in range(1, 4):
        for prefix, phase, system, category, key, fixable in _TAIL_PARTS:
            code = f"TAE_{prefix}_{7000 + number * 10}"
            kinds.append(
                ErrorKind(
                    code,
                    f"{key} ({number}).",
                    f"{key} reported by {system} during {phase}; step {number}.",
                    (-(7100 + number), number),
                    None if (prefix == "QUE" and number == 3) else system,
                    None if (prefix in ("QUE", "CFG") and number == 3) else phase,
                    category,
                    key,
                    f"{key.replace('Failed', ' failed')} (step {number}).",
                    _KB + f"KB01{number}{len(prefix)}{len(phase):02d}" if fixable else "",
                    fixable,
                )
            )
    return tuple(kinds)


ERROR_KINDS: tuple[ErrorKind, ...] = _HEAD + _tail()

# Zipf-like weights (rank ** -1.1): the first codes dominate, the last appear rarely.
CUMULATIVE_WEIGHTS: tuple[float, ...] = tuple(
    accumulate(1.0 / (rank**1.1) for rank in range(1, len(ERROR_KINDS) + 1))
)

# Pre-built error objects (without the per-occurrence exit code) keep generation cheap.
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
        "kbArticleLink": kind.kb_article_link,
        "canUserFix": kind.can_user_fix,
    }
    for kind in ERROR_KINDS
)
