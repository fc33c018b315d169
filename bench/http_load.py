"""HTTP/1.1 load generators on raw asyncio streams, for loopback benchmarks: closed and open loop.

`run` is a closed loop: a fixed number of workers, each on one keep-alive connection, take pre-built
requests from a shared list and send the next as soon as the previous answer is read, so
`concurrency` requests are always in flight; it finds how many requests per second a server answers.
`run_at_rate` is an open loop: requests are due at a fixed rate whatever the answers do, and each
latency counts from when its request was due; it answers how fast a server answers at a given rate.
Raw streams rather than an HTTP client library because the generator shares the machine's cores with
the server it measures, and every microsecond it spends is one the server does not get. For the same
reason the generator runs its garbage collector during a phase as the servers do (`serving_heap`):
what it built before the phase is frozen, so a full collection walks only the phase's objects. One
full collection over its whole heap took 86 ms at 1,500 requests/s in an open loop; for that long no
request went out, and every request due meanwhile counted the pause as the server's latency. For the
same reason a phase runs on uvloop (`drive`).
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from exchange.api.serving import serving_heap

_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
_T = TypeVar("_T")


def drive(phase: Coroutine[Any, Any, _T]) -> _T:
    """Run a phase of load to its end on uvloop when it is installed (the servers' loop too), else on
    asyncio's own: the generator's loop spends the machine's cores as the servers' does, so the cheaper
    one leaves more of them to the servers it measures."""
    if importlib.util.find_spec("uvloop") is None:
        return asyncio.run(phase)
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(phase)


@dataclass(frozen=True)
class Target:
    """Where the requests go."""

    host: str
    port: int


@dataclass
class Outcome:
    """What one phase of load measured: latencies of every answered request and the status codes."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    # The rate the requests were due at (`run_at_rate`); None for a closed loop.
    offered: float | None = None

    @property
    def answered(self) -> int:
        return len(self.latencies)

    @property
    def errors(self) -> int:
        """Answers other than 200, plus requests that got no answer."""
        return self.answered - self.statuses[200] + sum(self.failures.values())

    @property
    def per_second(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        """The latency below which `fraction` of the answered requests fell (nearest rank), in seconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def post(target: Target, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """The bytes of a keep-alive POST with a JSON body."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {target.host}:{target.port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; its status and whether the server keeps the connection open."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" not in headers:
        raise ValueError("a response without Content-Length: the generator reads sized bodies only")
    await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split(" ", 2)[1]), headers.get("connection", "").lower() != "close"


async def _exchange(
    target: Target,
    connection: _Connection | None,
    request: bytes,
    since: float | None,
    outcome: Outcome,
    timeout: float,
) -> _Connection | None:
    """Send `request` on `connection` (opened first when None) and read its answer into `outcome`: the
    latency from `since` (None: from when the request is written) and the status, or the failure.
    Returns the connection to send the next request on (None: it was closed)."""
    try:
        if connection is None:
            connection = await asyncio.open_connection(target.host, target.port)
        reader, writer = connection
        # From when it was due, or from when it went out if that was sooner: uvloop rounds a timer to the
        # millisecond and may send a request up to half a millisecond before it is due.
        started = time.perf_counter() if since is None else min(since, time.perf_counter())
        writer.write(request)
        async with asyncio.timeout(timeout):
            status, keep = await _answer(reader)
        outcome.latencies.append(time.perf_counter() - started)
        outcome.statuses[status] += 1
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
        outcome.failures[type(exc).__name__] += 1
        keep = False
    if not keep and connection is not None:
        connection[1].close()
        connection = None
    return connection


async def _worker(
    target: Target, requests: Iterator[bytes], outcome: Outcome, deadline: float, timeout: float
) -> None:
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    try:
        for request in requests:  # one shared iterator: each request is sent by exactly one worker
            if time.perf_counter() >= deadline:
                return
            connection = await _exchange(target, connection, request, None, outcome, timeout)
    finally:
        if connection is not None:
            connection[1].close()


async def run(
    target: Target, requests: list[bytes], concurrency: int, seconds: float, timeout: float = 10.0
) -> Outcome:
    """Send `requests` with `concurrency` in flight until all are answered or `seconds` have passed."""
    outcome = Outcome()
    shared = iter(requests)
    with serving_heap():
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(
            *(_worker(target, shared, outcome, deadline, timeout) for _ in range(concurrency))
        )
        outcome.seconds = time.perf_counter() - started
    return outcome


async def run_at_rate(
    target: Target, requests: list[bytes], rate: float, connections: int, timeout: float = 10.0
) -> Outcome:
    """Send `requests` in an open loop: request i is due `i / rate` seconds after the start, and goes
    out then on a free keep-alive connection (of `connections`), or as soon as one is free.

    Each latency counts from when its request was due, not from when it went out: a server falling
    behind the rate makes requests wait for a connection, and that wait is in its percentiles. (A
    closed loop slows its sending down instead and reports the latency of the few requests it still
    sends: coordinated omission.)
    """
    outcome = Outcome(offered=rate)
    idle: asyncio.Queue[_Connection | None] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(None)  # opened on first use
    with serving_heap():
        started = time.perf_counter()
        # A task group holds only the requests still in flight (it lets a finished one go at once, so the
        # phase does not pile up tasks for the collector to walk) and raises what any of them raised.
        async with asyncio.TaskGroup() as sending:
            for number, request in enumerate(requests):
                due = started + number / rate
                # Behind (a busy machine), it still yields, so the requests already due go out.
                await asyncio.sleep(max(due - time.perf_counter(), 0.0))
                sending.create_task(_send_due(target, request, due, idle, outcome, timeout))
        outcome.seconds = time.perf_counter() - started
    while not idle.empty():
        connection = idle.get_nowait()
        if connection is not None:
            connection[1].close()
    return outcome


async def _send_due(
    target: Target,
    request: bytes,
    due: float,
    idle: asyncio.Queue[_Connection | None],
    outcome: Outcome,
    timeout: float,
) -> None:
    connection = await idle.get()
    idle.put_nowait(await _exchange(target, connection, request, due, outcome, timeout))
