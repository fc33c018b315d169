"""Stopping a process cleanly: SIGTERM and Ctrl-C set an event the process's loop checks."""

from __future__ import annotations

import signal
import threading


def stop_on_signals() -> threading.Event:
    """An event SIGTERM or SIGINT sets: the batch in hand is finished and committed, then the process ends."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop
