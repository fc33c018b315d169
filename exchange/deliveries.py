"""What the processor produced, held until the broker has acknowledged it: no commit of source offsets
before every profile and changelog record produced for them is acknowledged.

faust flushes its producer before it commits, but that flush is no guarantee: `ProducerBuffer.flush`
returns after any 0.1 s without a hand-off (a full aiokafka batch waiting for the request in flight
takes longer), leaving table changelog writes in faust's buffer; and a record whose delivery fails is
only logged (faust's `Topic._on_published`), its source offsets committed all the same. A crash after
such a commit lost the record for good: the replay starts past it. So every send's future is tracked
here, and the consumer settles them before each commit (exchange.ordered_consumer): a failure, or no
acknowledgement within the timeout, stops the process before the commit, and the restart replays.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from exchange.exceptions import ExchangeError


class DeliveryError(ExchangeError):
    """Raised when a record the processor produced was refused by the broker or never acknowledged."""


class Deliveries:
    """Futures of records produced and not yet known to be acknowledged."""

    def __init__(self, timeout_seconds: float, on_failure: Callable[[DeliveryError], None]) -> None:
        self.timeout_seconds = timeout_seconds
        self._on_failure = on_failure
        self._pending: list[asyncio.Future[object]] = []

    def track(self, sent: asyncio.Future[object]) -> None:
        """Hold `sent` (a delivery future: resolved on the broker's acknowledgement, failed otherwise)."""
        self._pending.append(sent)

    def __len__(self) -> int:
        return len(self._pending)

    async def settle(self) -> None:
        """Return once every record tracked before the call is acknowledged; call `on_failure` (which
        must not return normally: it stops the process, or raises) when one failed or timed out.

        Records tracked meanwhile are left for the next commit: the offsets being committed were chosen
        before the call, and every record produced for them was tracked by then. Waiting for those too
        (the next batch's, folded while this waits) never ended under a steady backlog: the processor
        committed no offset until the backlog ran out, and a crash replayed all of it.
        """
        pending, self._pending = self._pending, []
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=self.timeout_seconds)
        failed = [sent for sent in pending if sent.done() and not sent.cancelled() and sent.exception()]
        if failed:
            first = failed[0].exception()
            self._on_failure(
                DeliveryError(f"{len(failed)} record(s) produced were refused by Kafka: {first!r}")
            )
        if late:
            self._on_failure(
                DeliveryError(
                    f"{len(late)} record(s) produced were not acknowledged by Kafka within "
                    f"{self.timeout_seconds:g} s"
                )
            )
