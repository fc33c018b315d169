"""HTTP/1.1 load generators on asyncio protocols, for loopback benchmarks: closed and open loop.

`run` is a closed loop: a fixed number of workers, each on one keep-alive connection, take pre-built
requests from a shared list and send the next as soon as the previous answer is read, so
`concurrency` requests are always in flight; it finds how many requests per second a server answers.
`run_at_rate` is an open loop: requests are due at a fixed rate whatever the answers do, and each
latency counts from when its request was due; it answers how fast a server answers at a given rate.
Raw HTTP rather than an HTTP client library because the generator shares the machine's cores with
the server it measures, and every microsecond it spends is one the server does not get: each
connection is a protocol that parses its answer as the bytes arrive, so a request costs no task, no
stream and no await (at 2,000 requests/s, 50 µs of CPU a request rather than 70 on asyncio streams,
against a server answering at once in another process). For the same
reason the generator runs its garbage collector during a phase as the servers do (`serving_heap`):
what it built before the phase is frozen, so a full collection walks only the phase's objects. One
full collection over its whole heap took 86 ms at 1,500 requests/s in an open loop; for that long no
request went out, and every request due meanwhile counted the pause as the server's latency. For the
same reason a phase runs on uvloop (`drive`).
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import time
from collections import Counter, deque
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from exchange.api.serving import serving_heap

# A response head's `Connection: close`, lower-cased.
_CLOSE = re.compile(rb"\r\nconnection:[ \t]*close[ \t]*(?:\r\n|$)")
# The longest response head read: asyncio's streams' default limit.
_HEAD_LIMIT = 2**16
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


class _Connection(asyncio.Protocol):
    """One keep-alive connection of a phase: it sends one request at a time, reads the answer as its
    bytes arrive (no task, no stream, no await per request) and hands it to the phase."""

    def __init__(self, phase: _Phase) -> None:
        self._phase = phase
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._answer_end = -1  # where the answer being read ends in the buffer; -1: its head is not in yet
        self._status = 0
        self._keep = True
        self.sent = 0.0  # when the request in flight counts from; 0.0: none in flight

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a TCP connection's is an asyncio.Transport

    def send(self, request: bytes, since: float | None) -> None:
        """Send `request`; its latency counts from `since` (None: from now). From when it was due, or
        from when it went out if that was sooner: uvloop rounds a timer to the millisecond and may send
        a request up to half a millisecond before it is due."""
        assert self._transport is not None, "send on a closed connection"
        now = time.perf_counter()
        self.sent = now if since is None or since > now else since
        self._transport.write(request)

    @property
    def closed(self) -> bool:
        return self._transport is None or self._transport.is_closing()

    def close(self) -> None:
        self.sent = 0.0  # whatever was in flight is no longer this connection's to report
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        try:
            self._read(data)
        except Exception as exc:  # anything the phase does not count: the phase fails with it
            self._phase.abort(exc)

    def _read(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if self._answer_end < 0:
            end = buffer.find(b"\r\n\r\n")
            if end < 0 and len(buffer) <= _HEAD_LIMIT:
                return
            if end < 0 or end > _HEAD_LIMIT:
                raise asyncio.LimitOverrunError("a response head over the generator's limit", len(buffer))
            try:
                self._status, length, self._keep = _head(bytes(buffer[:end]))
            except ValueError:
                self.fail("ValueError")
                return
            self._answer_end = end + 4 + length
        if len(buffer) >= self._answer_end:
            del buffer[: self._answer_end]
            self._answer_end = -1
            sent, self.sent = self.sent, 0.0
            self._phase.answered(self, time.perf_counter() - sent, self._status, self._keep)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self.sent:  # closed by the server (or the network) before the whole answer came
            self.fail("IncompleteReadError" if exc is None else type(exc).__name__)

    def fail(self, failure: str) -> None:
        """Close the connection and count its request in flight as `failure`."""
        self.close()
        self._phase.failed(self, failure)


def _head(head: bytes) -> tuple[int, int, bool]:
    """A response head's status, body length and whether the server keeps the connection open."""
    lowered = head.lower()
    at = lowered.find(b"\r\ncontent-length:")
    if at < 0:
        raise ValueError("a response without Content-Length: the generator reads sized bodies only")
    end = lowered.find(b"\r\n", at + 2)
    length = int(lowered[at + 17 : end if end >= 0 else len(lowered)])
    status = int(head.split(b"\r\n", 1)[0].split(b" ", 2)[1])
    return status, length, _CLOSE.search(lowered) is None


class _Phase:
    """What both loops share: connections opened on first use, answers and failures counted into the
    outcome, requests that get no answer within `timeout` counted as `TimeoutError`, and the end."""

    def __init__(self, target: Target, outcome: Outcome, timeout: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._target = target
        self._timeout = timeout
        self.outcome = outcome
        self._ended: asyncio.Future[None] = self._loop.create_future()
        self._open: set[_Connection] = set()
        self._opening: set[asyncio.Task[None]] = set()

    def send(self, connection: _Connection | None, request: bytes, since: float | None) -> None:
        """Send `request` on `connection`, or on a new one when None or closed since (a server may close
        an idle keep-alive connection)."""
        if connection is not None and not connection.closed:
            connection.send(request, since)
            return
        opening = self._loop.create_task(self._open_and_send(request, since))
        self._opening.add(opening)
        opening.add_done_callback(self._opening.discard)

    async def _open_and_send(self, request: bytes, since: float | None) -> None:
        try:
            _, connection = await self._loop.create_connection(
                lambda: _Connection(self), self._target.host, self._target.port
            )
        except OSError as exc:
            self.outcome.failures[type(exc).__name__] += 1
            self.next(None)
            return
        self._open.add(connection)
        connection.send(request, since)

    def answered(self, connection: _Connection, latency: float, status: int, keep: bool) -> None:
        self.outcome.latencies.append(latency)
        self.outcome.statuses[status] += 1
        if not keep:
            self._drop(connection)
        self.next(connection if keep else None)

    def failed(self, connection: _Connection, failure: str) -> None:
        self.outcome.failures[failure] += 1
        self._open.discard(connection)
        self.next(None)

    def _drop(self, connection: _Connection) -> None:
        connection.close()
        self._open.discard(connection)

    def next(self, connection: _Connection | None) -> None:
        """What a connection does once its request is answered or failed (None: it is closed)."""
        raise NotImplementedError

    def end(self) -> None:
        if not self._ended.done():
            self._ended.set_result(None)

    def abort(self, exc: BaseException) -> None:
        if not self._ended.done():
            self._ended.set_exception(exc)

    async def ended(self) -> None:
        """Wait for the end (or the failure) of the phase, then close every connection."""
        watching = self._loop.create_task(self._watch())
        try:
            await self._ended
        finally:
            watching.cancel()
            for opening in list(self._opening):
                opening.cancel()
            for connection in self._open:
                connection.close()

    async def _watch(self) -> None:
        # One timer for the phase rather than one per request: a request unanswered for `timeout` fails.
        while True:
            await asyncio.sleep(min(self._timeout / 4, 0.5))
            now = time.perf_counter()
            for connection in list(self._open):
                if connection.sent and now - connection.sent > self._timeout:
                    connection.fail("TimeoutError")


class _ClosedLoop(_Phase):
    def __init__(
        self, target: Target, requests: Iterator[bytes], workers: int, deadline: float, timeout: float
    ) -> None:
        super().__init__(target, Outcome(), timeout)
        self._requests = requests
        self._deadline = deadline
        self._workers = workers

    def start(self) -> None:
        """Each worker sends its first request on a connection of its own (or stops: none left)."""
        if self._workers == 0:
            self.end()
        for _ in range(self._workers):
            self.next(None)

    def next(self, connection: _Connection | None) -> None:
        request = next(self._requests, None) if time.perf_counter() < self._deadline else None
        if request is not None:  # one shared iterator: each request is sent by exactly one worker
            self.send(connection, request, None)
            return
        if connection is not None:
            self._drop(connection)
        self._workers -= 1
        if self._workers == 0:
            self.end()


class _OpenLoop(_Phase):
    def __init__(self, target: Target, count: int, rate: float, connections: int, timeout: float) -> None:
        super().__init__(target, Outcome(offered=rate), timeout)
        self._free: list[_Connection | None] = [None] * connections  # None: opened on first use
        self._waiting: deque[tuple[bytes, float]] = deque()  # due, and no connection free
        self._left = count

    def due(self, request: bytes, due: float) -> None:
        if self._free:
            self.send(self._free.pop(), request, due)
        else:
            self._waiting.append((request, due))

    def next(self, connection: _Connection | None) -> None:
        self._left -= 1
        if self._waiting:
            self.send(connection, *self._waiting.popleft())
        else:
            self._free.append(connection)
        if self._left == 0:
            self.end()


async def run(
    target: Target, requests: list[bytes], concurrency: int, seconds: float, timeout: float = 10.0
) -> Outcome:
    """Send `requests` with `concurrency` in flight until all are answered or `seconds` have passed."""
    with serving_heap():
        started = time.perf_counter()
        phase = _ClosedLoop(target, iter(requests), concurrency, started + seconds, timeout)
        phase.start()
        await phase.ended()
        phase.outcome.seconds = time.perf_counter() - started
    return phase.outcome


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
    with serving_heap():
        phase = _OpenLoop(target, len(requests), rate, connections, timeout)
        if not requests:
            phase.end()
        started = time.perf_counter()
        for number, request in enumerate(requests):
            due = started + number / rate
            pause = due - time.perf_counter()
            if pause > 0:  # behind (a busy machine), it sends what is due at once
                await asyncio.sleep(pause)
            phase.due(request, due)
        await phase.ended()
        phase.outcome.seconds = time.perf_counter() - started
    return phase.outcome
