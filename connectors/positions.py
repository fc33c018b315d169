"""Where each connector is: stored durably, and only after the broker acknowledged every record before it.

One small JSON document per connector and source, replaced atomically (write, fsync, rename), so a
connector killed at any moment finds either the old position or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
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
        temporary = path.with_suffix(".tmp")
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
