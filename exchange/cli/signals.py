"""Stopping a process cleanly: SIGTERM and Ctrl-C set an event the process's loop checks, or, for a
command with no loop of its own to check one, interrupt it as Ctrl-C does."""

from __future__ import annotations

import signal
import threading


def stop_on_signals() -> threading.Event:
    """An event SIGTERM or SIGINT sets: the batch in hand is finished and committed, then the process ends."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def interrupt_on_sigterm() -> None:
    """SIGTERM raises KeyboardInterrupt, as Ctrl-C does, so its `finally` blocks run.

    Without it SIGTERM ends Python at once: `exchange demo` or a benchmark, stopped by a service
    manager, `timeout` or `kill`, died without stopping the processes it supervises, and left them
    running. A command that handles SIGTERM itself (a service's loop) installs its own handler over this.
    """
    signal.signal(signal.SIGTERM, signal.default_int_handler)
