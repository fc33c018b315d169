"""One connector per source: a second one is refused while the first holds it."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from connectors.exceptions import ConnectorError
from connectors.positions import PositionStore


def _hold_in_another_process(
    folder: Path, held: multiprocessing.synchronize.Event, done: multiprocessing.synchronize.Event
) -> None:
    with PositionStore(folder).held("tax", "/exports/tax.csv"):
        held.set()
        done.wait(30)


def test_a_second_connector_of_a_source_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    # Two at once overwrote each other's position file (a shared temporary name: one failed on the
    # other's rename, or a torn document was put in place) and sent every record twice.
    held, done = multiprocessing.Event(), multiprocessing.Event()
    first = multiprocessing.Process(target=_hold_in_another_process, args=(tmp_path, held, done))
    first.start()
    try:
        assert held.wait(30)
        refused = pytest.raises(ConnectorError, match=r"another tax connector is reading /exports/tax\.csv")
        with refused, PositionStore(tmp_path).held("tax", "/exports/tax.csv"):
            pass
        with PositionStore(tmp_path).held("tax", "/exports/other.csv"):  # another source: free
            pass
    finally:
        done.set()
        first.join(30)
    with PositionStore(tmp_path).held("tax", "/exports/tax.csv"):  # the first is gone: free again
        PositionStore(tmp_path).save("tax", "/exports/tax.csv", {"offset": 1})
    assert PositionStore(tmp_path).load("tax", "/exports/tax.csv")["offset"] == 1
    assert sorted(path.suffix for path in tmp_path.iterdir()) == [".json", ".lock", ".lock"]
