"""Change tracking for incremental builds: which runs a load or a deletion touched, and
when every table was rewritten, so the next build redoes only what changed (see builds)."""

from __future__ import annotations

import pyarrow as pa

from pipeline.warehouse import load_sql as sql
from pipeline.warehouse.builds import forget_builds, next_change_seq
from pipeline.warehouse.statements import StatementRunner


class ChangeLog:
    """Records run changes in `model_changes`, inside the caller's transaction."""

    def __init__(self, statements: StatementRunner) -> None:
        self.statements = statements

    def record_changes(self, runs: pa.Table) -> None:
        """The batch's new, changed and stale runs (classified in `_classified`)."""
        # Before the old rows go: a changed run's old start day is read from `runs`.
        seq = next_change_seq(self.statements.con)
        self.statements.run("record changes", sql.record_changes(seq), runs)

    def record_deletions(self) -> None:
        """The runs listed in `_deleted`, and the days they leave."""
        seq = next_change_seq(self.statements.con)
        self.statements.run("record deletions", sql.record_deletions(seq))

    def forget_builds(self) -> None:
        """Every table is rewritten: the next build is a full one."""
        forget_builds(self.statements.con)
