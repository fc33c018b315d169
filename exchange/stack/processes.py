"""Small process helpers shared by the stack's services: commands, pid files, waiting with a deadline."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from exchange.exceptions import StackError


def run(command: Sequence[str], *, what: str, cwd: Path | None = None) -> str:
    """Run a command to completion and return its stdout; raise `StackError` naming `what` on failure."""
    try:
        done = subprocess.run(list(command), cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise StackError(f"{what}: cannot run {command[0]}: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
        raise StackError(f"{what} failed (exit {done.returncode}):\n" + "\n".join(tail))
    return done.stdout


def ensure_port_free(port: int, what: str, setting: str) -> None:
    """Raise `StackError` when something already accepts connections on 127.0.0.1:`port`: a service
    started there would fail to bind, and checks of "is it up?" would be answered by the stranger."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        if probe.connect_ex(("127.0.0.1", port)) != 0:
            return
    raise StackError(
        f"cannot start {what}: another process already listens on 127.0.0.1:{port} "
        f"(stop it, or choose another port with {setting})"
    )


def read_pid(pid_file: Path) -> int | None:
    """The pid in `pid_file` if that process is alive, else None."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def process_mentions(pid: int, needle: str) -> bool:
    """Whether the command line of `pid` contains `needle`: never signal a recycled pid."""
    try:
        return needle in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False


def terminate(pid: int, *, grace_seconds: float = 30.0) -> None:
    """SIGTERM, wait for the process to go, SIGKILL if it outlives the grace period."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not wait_until(lambda: not _alive(pid), grace_seconds, poll=0.2):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        wait_until(lambda: not _alive(pid), 10.0, poll=0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours is gone for every purpose but the process table.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except (OSError, IndexError):
        return False
    if state == "Z":
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


def wait_until(check: Callable[[], bool], timeout: float, *, poll: float = 0.25) -> bool:
    """Call `check` until it returns True or `timeout` seconds pass; True when it succeeded."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)


def as_postgres_user(command: Sequence[str]) -> list[str]:
    """PostgreSQL refuses to run as root; when we are root, run the command as the `postgres` user."""
    if os.geteuid() != 0:
        return list(command)
    return ["runuser", "-u", "postgres", "--", *command]
