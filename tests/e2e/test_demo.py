"""`exchange demo` runs unattended on a small population and ends with every process stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from support import free_port

from exchange.settings import ExchangeSettings


def _children_of(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(status.parent.name))
    return found


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, exited but not yet reaped by its parent, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "EXCHANGE_API__PORT": str(free_port()),
        "EXCHANGE_PROCESSOR__WEB_PORT": str(free_port()),
        "EXCHANGE_STACK__HOME": str(tmp_path / "stack"),
    }


def test_the_demo_runs_unattended_and_stops_everything(
    base_settings: ExchangeSettings, kafka_available: str, tmp_path: Path
) -> None:
    env = _env(tmp_path)
    demo = subprocess.Popen(
        [sys.executable, "-m", "exchange", "demo", "--people", "80", "--no-wait", "--timeout", "300"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output, _ = demo.communicate(timeout=600)
    text = " ".join(output.decode(errors="replace").split())  # rich wraps lines at the pipe's width
    assert demo.returncode == 0, text[-4000:]
    assert "80 of 80 subjects' facts equal the generator's expected facts" in text
    assert "talent office after consent (授权) → HTTP 200" in text
    assert "a bank with no grant → HTTP 403" in text
    assert _children_of(demo.pid) == []
    # Every supervised process reported its exit; none was left behind.
    assert "stopped:" in text


def test_the_demo_stopped_by_sigterm_stops_what_it_supervises(
    base_settings: ExchangeSettings, kafka_available: str, tmp_path: Path
) -> None:
    # A service manager, `timeout` or `kill` stops with SIGTERM, not Ctrl-C. The demo used to die of it
    # at once and leave the processor, the sink, the connectors and the API running, orphaned.
    demo = subprocess.Popen(
        [sys.executable, "-m", "exchange", "demo", "--people", "40", "--timeout", "300"],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    supervised: list[int] = []
    try:
        deadline = time.monotonic() + 120
        # All nine it starts (processor, sink, four connectors, API, approvals, lag exporter), before it
        # has loaded anything, so that the test watches every one of them.
        while len(supervised) < 9 and demo.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
            supervised = _children_of(demo.pid)
        assert len(supervised) == 9, f"the demo started {len(supervised)} processes"
        # `ps` shows every command line to every user of the machine: a secret goes in the environment.
        command_lines = [_command_line(pid) for pid in supervised]
        demo.send_signal(signal.SIGTERM)
        output, _ = demo.communicate(timeout=120)
        left = [pid for pid in supervised if _alive(pid)]
    finally:
        if demo.poll() is None:
            demo.kill()
        for pid in supervised:  # a failing run leaves nothing behind for the tests after it
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    text = " ".join(output.decode(errors="replace").split())
    assert demo.returncode == 0, text[-4000:]
    assert "stopped:" in text
    assert left == []
    assert [line for line in command_lines if "password" in line] == []
