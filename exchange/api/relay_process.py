"""The audit relay in a child process of the API: its reads, JSON, Avro and Kafka sends off the API's
event loop (one core serves the requests; the relay's work would take turns with theirs).

`supervise` runs in the API's lifespan: it starts `python -m exchange.api.relay_process` with the
API's settings in the environment, starts it again when it exits unasked (backing off), and stops it
(SIGTERM: the pass in flight finishes, the producer is closed) when the API stops. The child exits
by itself if its parent goes. It runs `audit_relay_niceness` nicer than the API: no request waits
for it, so it takes the CPU the requests leave. Several API processes each have a relay; SKIP LOCKED
lets one relay at a time (exchange.api.relay).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

from exchange import admin
from exchange.api.relay import AuditRelay
from exchange.api.storage.pool import create_pool
from exchange.exceptions import ExchangeError
from exchange.settings import ExchangeSettings, child_environment, load_settings
from exchange.topics import AUDIT

_log = logging.getLogger("exchange.api.relay")
MODULE = "exchange.api.relay_process"
_STOP_SECONDS = 20.0
_RESTART_SECONDS = (0.5, 30.0)


async def supervise(settings: ExchangeSettings, stop: asyncio.Event) -> None:
    """Keep a relay child running until `stop` is set, then stop it and wait for it to exit."""
    delay = _RESTART_SECONDS[0]
    while not stop.is_set():
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            MODULE,
            env=child_environment(settings),
            stdin=asyncio.subprocess.DEVNULL,
        )
        exited = asyncio.create_task(child.wait())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait((exited, stopping), return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            exited.cancel()
            await _stop(child)
            return
        stopping.cancel()
        _log.warning("audit relay process exited with %s; starting it again", child.returncode)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
        delay = min(delay * 2, _RESTART_SECONDS[1])


async def _stop(child: asyncio.subprocess.Process) -> None:
    if child.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(child.wait(), timeout=_STOP_SECONDS)
        except TimeoutError:
            _log.warning("audit relay process did not stop within %.0f s; killing it", _STOP_SECONDS)
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()


async def relay(settings: ExchangeSettings, stop: asyncio.Event) -> None:
    """The child's work: relay until `stop` is set (exchange.api.relay)."""
    with contextlib.suppress(ExchangeError):  # Kafka down: the relay retries later
        await asyncio.to_thread(admin.ensure_topics, settings.kafka, (AUDIT,))
    pool = create_pool(settings)
    await pool.open(wait=True, timeout=settings.api.pool_timeout_seconds)
    audit_relay = AuditRelay(settings, pool)
    try:
        await audit_relay.run(stop)
    finally:
        await audit_relay.close()
        await pool.close()


async def _orphaned(stop: asyncio.Event, parent: int) -> None:
    # The API went without stopping us (killed): stop too rather than relay on unsupervised.
    while not stop.is_set():
        if os.getppid() != parent:
            stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)


async def _main() -> None:
    settings = load_settings()
    os.nice(settings.api.audit_relay_niceness)  # the requests' turn on the cores comes first
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    watching = asyncio.create_task(_orphaned(stop, os.getppid()))
    try:
        await relay(settings, stop)
    finally:
        stop.set()
        await watching


def main() -> None:
    """`python -m exchange.api.relay_process`, with the API's `EXCHANGE_*` environment."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(_main())


if __name__ == "__main__":
    main()
