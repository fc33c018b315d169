"""Where the CPU went during a benchmark phase, from Linux's /proc: the machine, and chosen processes.

Throughput on a shared machine means little without it: a server at 100% of a core is the limit, a
server at 40% while the machine is busy is waiting for something else (PostgreSQL, the generator,
another job).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def cores() -> int:
    """The cores /proc/stat counts (those this machine, or container, runs on)."""
    lines = Path("/proc/stat").read_text().splitlines()
    return sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())


def _process_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))


def _machine_ticks() -> tuple[int, int]:
    """Busy and total ticks of all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return sum(values) - idle, sum(values)


@dataclass(frozen=True)
class Sample:
    """Tick counters at one instant."""

    machine_busy: int
    machine_total: int
    processes: dict[str, int]


@dataclass(frozen=True)
class Usage:
    """CPU between two samples, in cores: 1.0 is one core fully busy for the whole interval."""

    machine_cores: float
    processes: dict[str, float]


class CpuClock:
    """Samples the machine's and named processes' CPU ticks (Linux only)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids

    def sample(self) -> Sample:
        busy, total = _machine_ticks()
        return Sample(busy, total, {name: _process_ticks(pid) for name, pid in self.pids.items()})

    def since(self, before: Sample) -> Usage:
        """Cores used since `before` by the machine as a whole and by each named process."""
        now = self.sample()
        # Seconds of wall time, from the machine's total ticks (all cores count together).
        seconds = (now.machine_total - before.machine_total) / _TICKS / cores()
        if seconds <= 0:
            return Usage(0.0, {name: 0.0 for name in self.pids})
        return Usage(
            (now.machine_busy - before.machine_busy) / _TICKS / seconds,
            {
                name: (now.processes[name] - before.processes.get(name, 0)) / _TICKS / seconds
                for name in self.pids
            },
        )
