"""`exchange bench postgres`: what a query costs the client through the stack's Unix socket, against the
same loop over loopback TCP (the baseline), measured in the same run.

The exchange reaches the stack's PostgreSQL through its socket (`PostgresSettings.socket_dir`). Each
loop is the API's way of querying, one statement at a time: psycopg's async connection on uvloop, a
prepared statement with one parameter, a row fetched. The loops alternate over a few rounds (the host's
speed drifts); per query the process's CPU time and the wall time are reported, and the median round's.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass

import psycopg
import uvloop
from rich.console import Console
from rich.table import Table

from exchange.exceptions import ExchangeError
from exchange.settings import PostgresSettings

_console = Console(width=None if sys.stdout.isatty() else 200)
_WARM_UP = 500


@dataclass(frozen=True)
class Loop:
    """One measured loop: the CPU and wall time per query, in microseconds."""

    cpu_us: float
    wall_us: float


async def _loop(conninfo: str, queries: int) -> tuple[Loop, str]:
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        for number in range(_WARM_UP):
            await (await conn.execute("SELECT %s::int", (number,))).fetchone()
        cpu, wall = time.process_time(), time.perf_counter()
        for number in range(queries):
            await (await conn.execute("SELECT %s::int", (number,))).fetchone()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        return Loop(cpu / queries * 1e6, wall / queries * 1e6), str(conn.info.host)


def run(postgres: PostgresSettings, queries: int, rounds: int) -> dict[str, list[Loop]]:
    """Measure both loops `rounds` times in alternation; print the table and the median ratio."""
    if postgres.socket_dir is None:
        raise ExchangeError(
            "no socket to measure: PostgreSQL is not the stack's (set EXCHANGE_POSTGRES__SOCKET_DIR)"
        )
    tcp = postgres.over_tcp()
    loops: dict[str, list[Loop]] = {"socket": [], "tcp": []}
    for _ in range(rounds):
        for name, settings in (("socket", postgres), ("tcp", tcp)):
            loop, host = uvloop.run(_loop(settings.conninfo(), queries))
            if (name == "socket") != host.startswith("/"):
                raise ExchangeError(f"the {name} loop connected to {host}: is the stack's server running?")
            loops[name].append(loop)
    table = Table("connection", "rounds", "client CPU µs/query (median)", "wall µs/query (median)")
    for name, measured in loops.items():
        table.add_row(
            name,
            str(len(measured)),
            f"{statistics.median(m.cpu_us for m in measured):.1f}",
            f"{statistics.median(m.wall_us for m in measured):.1f}",
        )
    _console.print(table)
    ratio = statistics.median(s.cpu_us / t.cpu_us for s, t in zip(loops["socket"], loops["tcp"], strict=True))
    _console.print(
        f"client CPU per query, socket / TCP: {ratio:.2f} (the median round's; {queries:,} queries each)"
    )
    return loops
