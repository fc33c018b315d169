"""The stack's PostgreSQL refuses, with what to change, a socket path its server could not use (the
folder the postgres user cannot enter: tests/integration/test_foundation.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from exchange.exceptions import StackError
from exchange.stack.postgres import SOCKET_PATH_LIMIT, check_socket_path


def test_a_socket_path_postgresql_would_refuse_names_the_setting_to_change(tmp_path: Path) -> None:
    # A clone deep in the file system: the server refused to start, naming only the path.
    deep = tmp_path / ("d" * (SOCKET_PATH_LIMIT - len(str(tmp_path))))
    with pytest.raises(StackError, match="EXCHANGE_STACK__HOME"):
        check_socket_path(deep, 15432)
    check_socket_path(tmp_path / "run", 15432)
