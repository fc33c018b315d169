"""Where each connector is: stored durably, and only after the broker acknowledged every record before it.

One small JSON document per connector and source, replaced atomically (write, fsync, rename), so a
connector killed at any moment finds either the old position or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from connectors.exceptions import ConnectorError


class PositionStore:
    """The positions of the connectors of one exchange, in a folder of their own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _file(self, department: str, source: str) -> Path:
        digest = hashlib.sha256(source.encode()).hexdigest()[:16]
        return self.folder / f"{department}-{digest}.json"

    @contextlib.contextmanager
    def held(self, department: str, source: str) -> Iterator[None]:
        """Hold `source` for one connector of `department` while the block runs: a second one is
        refused. Two at once overwrote each other's position (one's temporary file under the other's
        rename failed it, or a torn document was put in place) and sent every record twice."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._file(department, source).with_suffix(".lock")
        with open(path, "a", encoding="utf-8") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConnectorError(
                    f"another {department} connector is reading {source} (it holds {path}): one connector "
                    "per source; stop it first"
                ) from None
            yield  # the lock goes with the file's closing, and with the process

    def load(self, department: str, source: str) -> dict[str, Any]:
        """The stored position of `department` reading `source`, or an empty one."""
        path = self._file(department, source)
        try:
            stored: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConnectorError(
                f"position file {path} is unreadable: {exc}; remove it to start over"
            ) from exc
        return stored

    def save(self, department: str, source: str, position: dict[str, Any]) -> None:
        """Replace the stored position atomically and durably."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._file(department, source)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")  # its own, whatever else writes there
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump({"source": source, **position}, out, ensure_ascii=False)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
        directory = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
