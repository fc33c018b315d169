"""The benchmarks' CPU readings: a server that forks a process per connection (PostgreSQL) is counted with
its children, those still running and those that have exited alike; a plain process without them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.cpu_usage import CpuClock, postmaster_pid
from exchange.settings import ExchangeSettings, StackSettings

TICKS = os.sysconf("SC_CLK_TCK")
# A child that keeps a core busy until it has used this much CPU time, then exits.
_BURN = "import time\nwhile time.process_time() < {seconds}: pass\n"


def _burn(seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", _BURN.format(seconds=seconds)])


def _own_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_a_tree_counts_its_children_running_and_exited_and_a_process_only_itself() -> None:
    clock = CpuClock({"alone": os.getpid()}, {"tree": os.getpid()})
    before = clock.sample()
    _burn(0.3).wait()  # exited and waited for: its time is in this process's cutime and cstime
    running = _burn(60.0)
    try:
        while _own_ticks(running.pid) < 0.2 * TICKS:  # read while it still runs
            pass
        now = clock.sample()
    finally:
        running.kill()
        running.wait()
    tree = now.processes["tree"] - before.processes["tree"]
    alone = now.processes["alone"] - before.processes["alone"]
    # 0.3 s of the exited child and at least 0.2 s of the running one, a tick of rounding each.
    assert tree - alone >= 0.5 * TICKS - 2


def test_no_postmaster_without_a_cluster(tmp_path: Path) -> None:
    assert postmaster_pid(ExchangeSettings(stack=StackSettings(home=tmp_path))) is None
