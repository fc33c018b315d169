"""`exchange demo` runs unattended on a small population and ends with every process stopped."""

from __future__ import annotations

import os
import subprocess
import sys
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


def test_the_demo_runs_unattended_and_stops_everything(
    base_settings: ExchangeSettings, kafka_available: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "EXCHANGE_API__PORT": str(free_port()),
        "EXCHANGE_PROCESSOR__WEB_PORT": str(free_port()),
        "EXCHANGE_STACK__HOME": str(tmp_path / "stack"),
    }
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
