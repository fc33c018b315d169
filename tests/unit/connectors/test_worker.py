"""The preparing process of a file connector: items in order, errors carried over, nothing left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from worker_targets import endless_with_pid

from connectors.exceptions import ConnectorError, HeaderError
from connectors.worker import in_worker


def numbers(count: int) -> Iterator[int]:
    yield from range(count)


def numbers_then_header_error(count: int) -> Iterator[int]:
    yield from range(count)
    raise HeaderError("the header is not the expected columns")


class _Unpicklable(Exception):
    def __init__(self, first: str, second: str) -> None:
        super().__init__(f"{first} {second}")


def unpicklable_error() -> Iterator[int]:
    yield 1
    raise _Unpicklable("lost", "arguments")


def test_items_come_back_in_order() -> None:
    assert list(in_worker(numbers, 25, name="test")) == list(range(25))


def test_an_error_in_the_worker_is_raised_with_its_type_after_what_came_before() -> None:
    received = []
    with pytest.raises(HeaderError, match="expected columns"):
        for item in in_worker(numbers_then_header_error, 3, name="test"):
            received.append(item)
    assert received == [0, 1, 2]


def test_an_error_that_cannot_be_pickled_is_described() -> None:
    with pytest.raises(ConnectorError, match="_Unpicklable: lost arguments"):
        list(in_worker(unpicklable_error, name="test"))


def test_closing_early_ends_the_worker(tmp_path: Path) -> None:
    items = in_worker(endless_with_pid, str(tmp_path), name="test")
    assert next(items) == 0
    pid = int((tmp_path / "worker.pid").read_text())
    items.close()
    assert not _alive(pid)


def test_a_worker_whose_parent_was_killed_ends_itself(tmp_path: Path) -> None:
    parent = textwrap.dedent(
        f"""
        import time
        from connectors.worker import in_worker
        from worker_targets import endless_with_pid

        if __name__ == "__main__":
            items = in_worker(endless_with_pid, {str(tmp_path)!r}, name="test")
            next(items)
            print("ready", flush=True)
            time.sleep(600)
        """
    )
    script = tmp_path / "parent.py"
    script.write_text(parent)
    root = Path(__file__).resolve().parents[3]
    process = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": os.pathsep.join((str(root), str(Path(__file__).parent)))},
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == b"ready"
        pid = int((tmp_path / "worker.pid").read_text())
        assert _alive(pid)
        process.send_signal(signal.SIGKILL)
        process.wait()
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pid)
    finally:
        process.kill()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"
