"""The stack's PostgreSQL refuses, with what to change, a cluster folder its server could not use."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from exchange.exceptions import StackError
from exchange.settings import PostgresSettings, StackSettings
from exchange.stack.postgres import SOCKET_PATH_LIMIT, PostgresCluster, check_socket_path


def test_a_socket_path_postgresql_would_refuse_names_the_setting_to_change(tmp_path: Path) -> None:
    # A clone deep in the file system: the server refused to start, naming only the path.
    deep = tmp_path / ("d" * (SOCKET_PATH_LIMIT - len(str(tmp_path))))
    with pytest.raises(StackError, match="EXCHANGE_STACK__HOME"):
        check_socket_path(deep, 15432)
    check_socket_path(tmp_path / "run", 15432)


def test_a_cluster_folder_the_postgres_user_cannot_enter_names_the_setting_to_change() -> None:
    # As root (how `make` runs here) the server runs as postgres; under a folder closed to other users
    # (/root is 0700) initdb failed with a bare "permission denied".
    assert os.geteuid() == 0, "the stack runs PostgreSQL as the postgres user when run as root"
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:  # pytest's tmp_path is itself closed
        Path(folder).chmod(0o755)
        closed = Path(folder) / "closed"
        closed.mkdir(mode=0o700)
        cluster = PostgresCluster(StackSettings(home=closed / ".stack"), PostgresSettings())
        with pytest.raises(StackError, match=r"postgres user.*EXCHANGE_STACK__HOME"):
            cluster._prepare_folder()
        closed.chmod(0o755)
        cluster._prepare_folder()  # open: no complaint
