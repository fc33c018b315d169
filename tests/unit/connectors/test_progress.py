"""A long import's progress: a bar over the file's bytes on a terminal, log lines otherwise."""

from __future__ import annotations

import io
import logging
from collections import Counter

import pytest
from rich.console import Console

from connectors import progress
from connectors.progress import Reporter
from connectors.runner import Summary


def test_on_a_terminal_a_bar_runs_over_the_files_bytes_with_the_figures() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160)
    with Reporter("tax", console, total_bytes=1000) as reporter:
        reporter(Summary(read=40, published=39, rejected=Counter({"column_count": 1}), position=500))
    shown = screen.getvalue()
    assert "50%" in shown
    assert "published 39" in shown
    assert "rejected 1" in shown
    assert "records/s" in shown


def test_elsewhere_it_logs_lines(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(progress, "LOG_EVERY_SECONDS", 0.0)
    console = Console(file=io.StringIO(), force_terminal=False)
    with caplog.at_level(logging.INFO, logger="exchange.connect"), Reporter("social", console) as reporter:
        reporter(Summary(read=7, published=5, rejected=Counter({"bad_json": 2})))
    assert any("social: " in line and "rejected 2" in line for line in caplog.messages)
