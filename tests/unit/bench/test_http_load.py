"""The load generators against a tiny local HTTP server: the open loop keeps its schedule and counts each
latency from when its request was due, where a closed loop would hide a slow server's queue."""

from __future__ import annotations

import asyncio
import gc
import time

from bench import http_load


class Server:
    """Answers every POST with 200 after `delay` seconds, one request at a time per connection, and
    notes when each request arrived."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.arrivals: list[float] = []
        self.collections: list[int] = []  # the generator's collections so far, at each arrival

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.arrivals.append(time.perf_counter())
                self.collections.append(gc.get_stats()[0]["collections"])
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                await asyncio.sleep(self.delay)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


async def _load(delay: float, rate: float, connections: int, count: int) -> tuple[http_load.Outcome, Server]:
    served = Server(delay)
    server = await asyncio.start_server(served.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    target = http_load.Target("127.0.0.1", port)
    requests = [http_load.post(target, "/x", b"{}", {}) for _ in range(count)]
    async with server:
        outcome = await http_load.run_at_rate(target, requests, rate, connections)
    return outcome, served


def test_the_open_loop_sends_no_request_before_it_is_due() -> None:
    outcome, served = asyncio.run(_load(delay=0.0, rate=400.0, connections=8, count=40))
    assert outcome.answered == 40 and outcome.statuses[200] == 40 and outcome.errors == 0
    assert outcome.offered == 400.0
    first = served.arrivals[0]
    # Request i is due i / 400 s after the first: a slow machine makes it later, never earlier.
    for number, arrived in enumerate(sorted(served.arrivals)):
        assert arrived - first >= number / 400.0 - 0.002, number


def test_a_server_slower_than_the_rate_shows_its_queue_in_the_latencies() -> None:
    # One connection answering in 20 ms each, 20 requests due 5 ms apart: the last one is due after
    # 95 ms and answered after at least 400 ms, so it waited at least 300 ms since it was due, where a
    # closed loop (which sends the next only after an answer) would report about 20 ms for each.
    outcome, _ = asyncio.run(_load(delay=0.02, rate=200.0, connections=1, count=20))
    assert outcome.answered == 20 and outcome.errors == 0
    assert max(outcome.latencies) >= 0.3
    assert outcome.percentile(0.99) == max(outcome.latencies)


def test_the_generator_does_not_collect_garbage_while_it_sends() -> None:
    # A collector that would run at nearly every allocation: between the first request and the last,
    # it would collect many times over. Paused for the phase (a full collection once took 86 ms and
    # every request due meanwhile counted it as the server's latency), it collects not once.
    thresholds = gc.get_threshold()
    gc.set_threshold(1, 1, 1)
    try:
        outcome, served = asyncio.run(_load(delay=0.0, rate=400.0, connections=4, count=40))
    finally:
        gc.set_threshold(*thresholds)
    assert outcome.answered == 40 and outcome.errors == 0
    assert served.collections[0] == served.collections[-1]
    assert gc.isenabled()
