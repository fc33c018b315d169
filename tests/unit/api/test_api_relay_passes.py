"""The audit relay's passes (exchange.api.relay.AuditRelay.run): behind, it passes again at once;
caught up (a pass found less than a page), it pauses for the interval first, so that each pass takes
the rows of a whole interval rather than the few appended during the pass before."""

from __future__ import annotations

import asyncio

from aiokafka.errors import KafkaConnectionError

from exchange.api.relay import AuditRelay
from exchange.settings import ExchangeSettings


async def _passes(found: list[int], page: int) -> list[str]:
    """What the relay did, in order, its passes finding `found` rows in turn (then it is stopped)."""
    relay = AuditRelay(ExchangeSettings(), pool=None)  # type: ignore[arg-type]  # no pass reaches it
    stop = asyncio.Event()
    done: list[str] = []
    pending = list(found)

    async def publish_pending(size: int = 500) -> int:
        assert size == page
        if not pending:
            stop.set()
            return 0
        done.append(f"pass {pending[0]}")
        return pending.pop(0)

    async def pause(stop: asyncio.Event, seconds: float) -> None:
        done.append("pause")

    relay.publish_pending = publish_pending  # type: ignore[method-assign]
    relay._pause = pause  # type: ignore[method-assign]
    await asyncio.wait_for(relay.run(stop, page=page), timeout=10)
    return done


async def test_a_full_page_is_followed_at_once_and_a_partial_one_after_a_pause() -> None:
    assert await _passes([10, 10, 3, 1, 10, 2], page=10) == [
        "pass 10",
        "pass 10",
        "pass 3",
        "pause",
        "pass 1",
        "pause",
        "pass 10",
        "pass 2",
        "pause",
        "pause",
    ]


async def test_trouble_in_a_catch_up_is_logged_and_left_for_the_next_one() -> None:
    # The approvals consumer relays between batches; a Kafka error there used to end the process.
    relay = AuditRelay(ExchangeSettings(), pool=None)  # type: ignore[arg-type]  # no pass reaches it
    passes = [KafkaConnectionError(), 3]

    async def publish_pending(size: int = 500) -> int:
        found = passes.pop(0)
        if isinstance(found, Exception):
            raise found
        return found

    relay.publish_pending = publish_pending  # type: ignore[method-assign]
    assert await relay.catch_up() is False
    assert await relay.catch_up() is True and passes == []
