"""The supervisor and stop signals: a stop that arrives while a process starts still reaches it."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from exchange import supervisor as supervising
from exchange.supervisor import Supervisor


def test_a_stop_arriving_while_a_process_starts_is_raised_once_it_is_registered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The signal lands after the child exists and before `start` has registered it (in the real case,
    # while Popen waits for the child to exec). Raised there, it left the child running, unknown to
    # `stop_all`: the demo, stopped that way, orphaned the process it was starting.
    real_popen = subprocess.Popen

    def popen_then_stop(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        process = real_popen(*args, **kwargs)
        signal.raise_signal(signal.SIGTERM)
        return process

    monkeypatch.setattr(supervising.subprocess, "Popen", popen_then_stop)
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # as exchange.cli installs it
    supervisor = Supervisor(dict(os.environ), tmp_path)
    try:
        with pytest.raises(KeyboardInterrupt):
            supervisor.start("help", "--help")
        registered = list(supervisor.running)
    finally:
        codes = supervisor.stop_all()
        signal.signal(signal.SIGTERM, previous)
    assert [supervised.name for supervised in registered] == ["help"]
    # Stopped by `stop_all` (or done before it), either way not left running.
    assert list(codes) == ["help"] and registered[0].process.returncode is not None
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
