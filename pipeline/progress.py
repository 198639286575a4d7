"""Progress of a collection for people: bars on a terminal, plain lines in pipes and CI."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from pipeline.collection.results import connection_label

if TYPE_CHECKING:
    from pipeline.collection import ConnectionResult


class LineProgress:
    """One line when a connection starts, every N pages, and when it ends.

    `say` writes a line (print to stderr for the CLI, Dagster's log for the asset);
    `warn`, when given, writes the failures.
    """

    def __init__(
        self,
        say: Callable[[str], None],
        *,
        warn: Callable[[str], None] | None = None,
        every_pages: int = 25,
    ) -> None:
        self.say = say
        self.warn = warn or say
        self.every_pages = every_pages
        self.labels: dict[str, str] = {}

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def connection_started(self, connection_id: str, mode: str, display_name: str | None) -> None:
        label = self.labels[connection_id] = connection_label(connection_id, display_name)
        self.say(f"collecting {label} ({mode} pass)")

    def pages_fetched(self, connection_id: str, pages: int, runs: int) -> None:
        if pages % self.every_pages == 0:
            label = self.labels.get(connection_id, connection_id)
            self.say(f"  {label}: {pages} pages, {runs} runs")

    def connection_finished(self, result: ConnectionResult) -> None:
        if result.ok:
            self.say(f"done {result.label}: {result.describe_counts()}")
        else:
            self.warn(f"FAILED {result.label}: {result.describe_error()}")


class TerminalProgress:
    """A rich progress display with one bar per connection (total unknown until the end)."""

    def __init__(self) -> None:
        self.console = Console(stderr=True)
        self.bars = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> TerminalProgress:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def connection_started(self, connection_id: str, mode: str, display_name: str | None) -> None:
        label = escape(connection_label(connection_id, display_name))
        self.tasks[connection_id] = self.bars.add_task(
            f"{label} ({mode})", total=None, status="starting"
        )

    def pages_fetched(self, connection_id: str, pages: int, runs: int) -> None:
        task = self.tasks.get(connection_id)
        if task is not None:
            self.bars.update(task, status=f"{pages} pages, {runs} runs")

    def connection_finished(self, result: ConnectionResult) -> None:
        task = self.tasks.get(result.connection_id)
        if task is None:
            task = self.tasks[result.connection_id] = self.bars.add_task(
                escape(result.label), total=None, status=""
            )
        status = (
            f"[green]ok[/] {result.runs_new} new, {result.runs_changed} changed"
            if result.ok
            else f"[red]failed[/] {escape(result.describe_error())}"
        )
        self.bars.update(task, total=1, completed=1, status=status)


class FileLoadProgress:
    """Progress of `itwin-runs load`: a bar over files on a terminal, a line now and then."""

    def __init__(self, interactive: bool, stream: TextIO, every_s: float = 5.0) -> None:
        self.stream = stream
        self.every_s = every_s
        self.bars = (
            Progress(
                TextColumn("reading files"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} files, {task.fields[runs]} runs"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )
            if interactive
            else None
        )
        self.task: Any = None
        self.last_line = 0.0

    def __enter__(self) -> FileLoadProgress:
        if self.bars is not None:
            self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bars is not None:
            self.bars.stop()

    def __call__(self, summary: Any, total_files: int) -> None:
        if self.bars is not None:
            if self.task is None:
                self.task = self.bars.add_task("load", total=total_files, runs=0)
            self.bars.update(self.task, completed=summary.files, runs=summary.runs_read)
            return
        now = time.monotonic()
        if now - self.last_line >= self.every_s:
            self.last_line = now
            print(
                f"reading: {summary.files} of {total_files} files, {summary.runs_read} runs",
                file=self.stream,
                flush=True,
            )
