"""How a long import shows its progress: a rich progress bar on a terminal, log lines otherwise.

A file's bar runs over its bytes (the connector's position against the file's size), a table's is
open-ended; both say records/s, published and rejected.
"""

from __future__ import annotations

import logging
import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn

from connectors.runner import Summary

_log = logging.getLogger("exchange.connect")
LOG_EVERY_SECONDS = 5.0


class Reporter:
    """The progress callback of one connector run; use as a context manager around the run."""

    def __init__(self, department: str, console: Console, total_bytes: int | None = None) -> None:
        self.department = department
        self.started = time.monotonic()
        self._last_log = self.started
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[line]}"),
                TimeElapsedColumn(),
                console=console,
            )
            self._task = self._progress.add_task(department, total=total_bytes, line="starting…")

    def __enter__(self) -> Reporter:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def line(self, summary: Summary) -> str:
        """The figures of the run so far, in one line."""
        rate = summary.read / max(time.monotonic() - self.started, 1e-9)
        return (
            f"{rate:,.0f} records/s · read {summary.read:,} · published {summary.published:,} · "
            f"rejected {summary.rejected_total:,}"
        )

    def __call__(self, summary: Summary) -> None:
        line = self.line(summary)
        if self._progress is not None and self._task is not None:
            if summary.position is not None:
                self._progress.update(self._task, completed=summary.position, line=line)
            else:
                self._progress.update(self._task, line=line)
        elif time.monotonic() - self._last_log >= LOG_EVERY_SECONDS:
            _log.info("%s: %s", self.department, line)
            self._last_log = time.monotonic()
