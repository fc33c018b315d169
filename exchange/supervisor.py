"""Runs the exchange's processes side by side for `exchange demo`: start, watch, stop them all.

A process that exits on its own while the others run is an error the supervisor reports with the
tail of its log; stopping sends SIGTERM (each process finishes its batch and commits) and, after a
grace period, SIGKILL — so nothing is ever left running.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from exchange.exceptions import ExchangeError


class ProcessFailedError(ExchangeError):
    """Raised when a supervised process exits while it should be running."""


@dataclass
class Supervised:
    """One running `exchange …` process and its log."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 20) -> str:
        """The last lines of its log."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Supervisor:
    """The processes of one run, each an `exchange` command with the same environment."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.running: list[Supervised] = []

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> Supervised:
        """Start `exchange ARGS…` in the background, logging to `<logs>/<name>.log`; `env` adds variables."""
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}.log"
        with _stop_signals_held(), log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "exchange", *args],
                env={**self.env, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops them in order
            )
            supervised = Supervised(name, process, log)
            self.running.append(supervised)
        return supervised

    def check(self) -> None:
        """Raise `ProcessFailedError` if a process has exited."""
        for supervised in self.running:
            code = supervised.process.poll()
            if code is not None:
                raise ProcessFailedError(
                    f"{supervised.name} exited with {code}; the end of {supervised.log}:\n{supervised.tail()}"
                )

    def stop_all(self, grace_seconds: float = 60.0) -> dict[str, int]:
        """SIGTERM every process (latest first), wait, SIGKILL stragglers; return the exit codes."""
        for supervised in reversed(self.running):
            if supervised.process.poll() is None:
                supervised.process.send_signal(signal.SIGTERM)
        codes: dict[str, int] = {}
        for supervised in reversed(self.running):
            try:
                codes[supervised.name] = supervised.process.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                supervised.process.kill()
                codes[supervised.name] = supervised.process.wait()
        self.running.clear()
        return codes


@contextlib.contextmanager
def _stop_signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM held back while a process starts, and raised again once it is registered.

    Handled at once (Ctrl-C's KeyboardInterrupt, or SIGTERM's, see exchange.cli.signals), a stop that
    arrives while `Popen` waits for the child to exec leaves that child running and unknown to
    `stop_all`. Only the main thread receives signals; elsewhere there is nothing to hold.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    stops = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, lambda signum, _: caught.append(signum)) for signum in stops}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if caught:
            signal.raise_signal(caught[0])  # handled now as it would have been
