"""Chunks taken back in turn from several preparing processes: in order, and failing loudly (never
hanging) when one of them dies or they disagree."""

from __future__ import annotations

import os
import signal
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from worker_targets import endless_with_pid

from connectors.exceptions import ConnectorError
from connectors.files import _in_turn
from connectors.worker import in_worker


def every_other(start: int, count: int) -> Iterator[int]:
    yield from range(start, count, 2)


def killed_after(count: int) -> Iterator[int]:
    yield from range(count)
    os.kill(os.getpid(), signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_chunks_come_back_in_turn_until_the_one_whose_turn_it_is_ends() -> None:
    workers: list[Any] = [in_worker(every_other, k, 7, name=f"test {k}") for k in range(2)]
    assert list(_in_turn(workers)) == list(range(7))


def test_a_worker_that_dies_fails_the_run_and_the_others_are_ended(tmp_path: Path) -> None:
    workers: list[Any] = [
        in_worker(endless_with_pid, str(tmp_path), name="test 1"),
        in_worker(killed_after, 2, name="test 2"),
    ]
    received = []
    with pytest.raises(ConnectorError, match=r"test 2 process ended \(exit code -9\)"):
        for item in _in_turn(workers):
            received.append(item)
    assert received == [0, 0, 1, 1, 2]
    assert not _alive(int((tmp_path / "worker.pid").read_text()))


def test_workers_that_disagree_on_the_last_chunk_fail_the_run() -> None:
    with pytest.raises(ConnectorError, match="disagree"):
        list(_in_turn([_items(1, 3), _items(2, 4, 6)]))


def _items(*items: int) -> Generator[Any, None, None]:
    yield from items
