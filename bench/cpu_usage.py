"""Where the CPU went during a benchmark phase, from Linux's /proc: the machine, and chosen processes.

Throughput on a shared machine means little without it: a server at 100% of a core is the limit, a
server at 40% while the machine is busy is waiting for something else (PostgreSQL, the generator,
another job).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from exchange.settings import ExchangeSettings
from exchange.stack.kafka import KafkaNode
from exchange.stack.postgres import PostgresCluster

_TICKS = os.sysconf("SC_CLK_TCK")


def cores() -> int:
    """The cores /proc/stat counts (those this machine, or container, runs on)."""
    lines = Path("/proc/stat").read_text().splitlines()
    return sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (the first is field 3 of proc(5), the state)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _process_ticks(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[11]) + int(fields[12]) if fields else 0  # utime, stime (fields 14, 15 of proc(5))


def _tree_ticks(pid: int) -> int:
    """The ticks of a server that forks a process per connection (PostgreSQL's postmaster): its own, its
    children's that have exited and been waited for (cutime, cstime), and its live children's."""
    fields = _stat(pid)
    if not fields:
        return 0
    ticks = sum(int(field) for field in fields[11:15])  # utime, stime, cutime, cstime
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            child = _stat(int(entry.name))
            if child and child[1] == str(pid):  # field 4 of proc(5): the parent's pid
                ticks += int(child[11]) + int(child[12])
    return ticks


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
    """Samples the machine's and named processes' CPU ticks (Linux only); a process named in `trees` is
    counted with its children (PostgreSQL: the postmaster and a backend per connection)."""

    def __init__(self, pids: dict[str, int], trees: dict[str, int] | None = None) -> None:
        self.names = [*pids, *(trees or {})]
        self._readers: dict[str, Callable[[], int]] = {
            **{name: partial(_process_ticks, pid) for name, pid in pids.items()},
            **{name: partial(_tree_ticks, pid) for name, pid in (trees or {}).items()},
        }

    def sample(self) -> Sample:
        busy, total = _machine_ticks()
        return Sample(busy, total, {name: read() for name, read in self._readers.items()})

    def since(self, before: Sample) -> Usage:
        """Cores used since `before` by the machine as a whole and by each named process."""
        now = self.sample()
        # Seconds of wall time, from the machine's total ticks (all cores count together).
        seconds = (now.machine_total - before.machine_total) / _TICKS / cores()
        if seconds <= 0:
            return Usage(0.0, {name: 0.0 for name in self.names})
        return Usage(
            (now.machine_busy - before.machine_busy) / _TICKS / seconds,
            {
                name: (now.processes[name] - before.processes.get(name, 0)) / _TICKS / seconds
                for name in self.names
            },
        )


def stack_servers(settings: ExchangeSettings) -> dict[str, int]:
    """The local stack's Kafka broker and PostgreSQL postmaster (`exchange stack up`), those running."""
    servers = {"Kafka": KafkaNode(settings.stack).running_pid(), "PostgreSQL": postmaster_pid(settings)}
    return {name: pid for name, pid in servers.items() if pid is not None}


def postmaster_pid(settings: ExchangeSettings) -> int | None:
    """The stack's PostgreSQL server process, from the first line of its data directory's postmaster.pid."""
    data = PostgresCluster(settings.stack, settings.postgres).data
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None
    return pid if _stat(pid) else None
