"""Generators the worker tests run in a preparing process: importable by name, so a child can load them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path


def endless_with_pid(folder: str) -> Iterator[int]:
    """Write the process's pid to `folder`/worker.pid, then count for ever."""
    Path(folder, "worker.pid").write_text(str(os.getpid()))
    count = 0
    while True:
        yield count
        count += 1
