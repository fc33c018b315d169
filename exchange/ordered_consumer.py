"""The processor's Kafka consumer: faust's aiokafka consumer, delivering the source topics without holes.

See `exchange.sequencing` for why. Five changes to faust's consumer, for the source topics only:

- every record passes `Sequencer.judge` before faust's delivery callback: records already delivered
  are skipped, and a record past a hole makes the consumer seek its partition back to the first
  missing offset (and skip records until that one comes);
- no record is handed over while a rebalance is under way (`App.rebalancing`): faust seeks to the
  committed offsets and only then resumes its streams, clearing their buffers as it does, so a record
  handed over in between was lost with the sequencer counting it delivered (a restarted processor
  then stood still, its commit held at the hole). Held back, it is read again like a dropped one;
- faust's own read offset is not consulted for them (`_ReadOffsets`): it would drop the re-read
  records as already seen, and would mark the hole as a gap whose offsets may be committed;
- every second, `_rewind_stalled` finds a hole at the end of a partition, which no
  later record reveals;
- the sequencer starts over from the committed offsets (the log's first offset where none is
  committed) at each seek to them: after every assignment, whatever was revoked.

And one for speed: faust delivers every record with `Service.wait_first(callback(message),
suspend_flow.wait())`, four tasks and an `asyncio.wait` per record, so that a delivery blocked when a
rebalance starts can be abandoned. `wait_first` here first steps the delivery itself: most complete
without waiting (the stream's buffer has room), and then no task is made; one that waits goes on,
from where it stopped, under faust's `wait_first`, as before.

Other topics (the table's changelog, read during recovery) keep faust's behaviour.

And one for freshness: faust has aiokafka's fetches wait up to 1.5 s for data (`fetch_max_wait_ms`).
aiokafka keeps one fetch in flight to a broker, for the partitions whose fetched records are all
consumed; while a busy partition's records are still being delivered, that fetch asks only for the
quiet ones, and the broker holds it the whole wait, so the busy partition's next records came up to
1.5 s late. The wait is `fetch_max_wait_ms` here.
"""

from __future__ import annotations

import asyncio
import logging
import time
import types
from collections.abc import Awaitable, Callable, Collection, Coroutine, Generator
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import IllegalStateError, KafkaError
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode import Service
from mode.services import WaitArgT, WaitResults
from mode.utils.times import Seconds

from exchange.sequencing import Sequencer, Verdict

_log = logging.getLogger(__name__)


class _ReadOffsets(dict[TP, int | None]):
    """faust's read offsets, except that a guarded topic's always reads as unknown."""

    def __init__(self, guarded: Collection[str]) -> None:
        super().__init__()
        self.guarded = frozenset(guarded)

    def __missing__(self, partition: TP) -> None:
        return None

    def __getitem__(self, partition: TP) -> int | None:
        if partition.topic in self.guarded:
            return None
        return super().__getitem__(partition)


HOLD_LIMIT_SECONDS = 120.0
"""How long source records may keep coming while held back before the processor gives up: a rebalance
ends within seconds of the streams' partitions being resumed, so this is one whose end never comes
(faust's recovery failed after resuming the flow), and would hold every record back for good."""


class Holding:
    """How long records have been held back without a break of `gap` seconds."""

    def __init__(self, gap: float = 5.0) -> None:
        self.gap = gap
        self.since: float | None = None
        self.last = 0.0

    def held(self, now: float) -> None:
        """A record was held back at `now`."""
        if self.since is None or now - self.last > self.gap:
            self.since = now
        self.last = now

    def ended(self) -> None:
        """A record was taken: nothing is being held back."""
        self.since = None

    def seconds(self, now: float) -> float:
        """How long records have been held back, up to `now`; 0 after a break of `gap`."""
        if self.since is None or now - self.last > self.gap:
            return 0.0
        return now - self.since


def ordered_consumer_class(
    guarded: Collection[str], fetch_max_wait_ms: int, stuck: Callable[[str], None]
) -> type[faust_aiokafka.Consumer]:
    """faust's aiokafka consumer class, delivering the records of the `guarded` topics without holes,
    its fetches waiting at most `fetch_max_wait_ms` for data; `stuck` is told (and should stop the
    process) when records have been held back for `HOLD_LIMIT_SECONDS` by a rebalance that never ends."""
    topics = frozenset(guarded)

    class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> AIOKafkaConsumer:
            consumer = super()._create_worker_consumer(transport)
            # aiokafka hands this to its fetcher when the consumer starts, which is after this.
            consumer._fetch_max_wait_ms = fetch_max_wait_ms
            return consumer

    class OrderedConsumer(faust_aiokafka.Consumer):
        def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
            return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.sequencer: Sequencer[TP] = Sequencer()
            self.holding = Holding()
            self._read_offset = _ReadOffsets(topics)
            self.callback = _guarded(self, self.callback, topics)

        async def wait_first(self, *coros: WaitArgT, timeout: Seconds | None = None) -> WaitResults:
            if timeout is not None or self.suspend_flow.is_set() or self.should_stop:
                return await super().wait_first(*coros, timeout=timeout)  # type: ignore[arg-type]  # None: none
            return await step_first(super().wait_first, *coros)

        async def _commit_offsets(self, offsets: Any, start_new_transaction: bool = True) -> bool:
            # Nothing is committed before what was produced for it is acknowledged (exchange.deliveries).
            deliveries = getattr(self.app, "deliveries", None)
            if deliveries is not None:
                await deliveries.settle()
            committed: bool = await super()._commit_offsets(offsets, start_new_transaction)
            return committed

        async def perform_seek(self) -> None:
            await super().perform_seek()
            start: dict[TP, int | None] = dict(self._committed_offset)
            # A partition with no committed offset is read from its beginning: expect that offset,
            # so that a record dropped before the group's first commit is read again too.
            fresh = [tp for tp in self.assignment() if tp.topic in topics and start.get(tp) is None]
            if fresh:
                start.update(await self.earliest_offsets(*fresh))
            self.sequencer.reset(start)

        @Service.timer(1.0)
        async def _rewind_stalled(self) -> None:
            """Every second, seek back each source partition fetched past a hole with no record after it."""
            if not self.flow_active:
                return  # a rebalance is under way; it ends with a seek to the committed offsets
            if self.app.rebalancing:  # its end is at hand: the flow is resumed
                held = self.holding.seconds(time.monotonic())
                if held > HOLD_LIMIT_SECONDS:
                    stuck(
                        f"source records have been held back for {held:.0f} s by a rebalance that does "
                        "not end (faust's recovery failed after resuming the flow?)"
                    )
                return
            sources = [tp for tp in self.assignment() if tp.topic in topics]
            for tp, position in (await positions(self.position, sources)).items():
                expected = self.sequencer.expected(tp)
                if expected is None:
                    continue
                if self.sequencer.stalled(tp, position, time.monotonic()):
                    _log.warning(
                        "records %d to %d of %s/%d were fetched but not delivered, and none came "
                        "after them; reading them again",
                        expected,
                        position - 1,
                        tp.topic,
                        tp.partition,
                    )
                    await self.seek(tp, expected)

    return OrderedConsumer


async def positions(
    position: Callable[[TP], Awaitable[int | None]], partitions: Collection[TP], timeout: float = 1.0
) -> dict[TP, int]:
    """The consumer's fetch position in each of `partitions` that has one, asked all at once: each
    question is a hop to faust's consumer thread, and asked one after the other under load they took
    longer than the timer's second. A partition whose position is unknown for now (revoked, or being
    reset) is left out; it is looked at the next time."""

    async def one(tp: TP) -> int | None:
        try:
            return await asyncio.wait_for(position(tp), timeout=timeout)
        except (TimeoutError, KafkaError, IllegalStateError):
            return None

    found = await asyncio.gather(*map(one, partitions))
    return {tp: offset for tp, offset in zip(partitions, found, strict=True) if offset is not None}


async def step_first(wait_first: Callable[..., Awaitable[WaitResults]], *coros: WaitArgT) -> WaitResults:
    """`wait_first(*coros)` (mode's `Service.wait_first`) for faust's `(delivery, suspend_flow.wait())`,
    stepping the delivery first: done at once, it is returned without a task; else it goes on under
    `wait_first` from where it stopped. Anything else goes to `wait_first` unchanged."""
    delivery = coros[0] if len(coros) == 2 else None
    if not isinstance(delivery, types.CoroutineType):
        return await wait_first(*coros)
    other = coros[1]
    try:
        waiting_on = delivery.send(None)
    except StopIteration as done:
        _close(other)
        return WaitResults([delivery], [done.value], False)
    except BaseException:
        _close(other)
        raise
    return await wait_first(_resume(delivery, waiting_on), other)


def _close(waitable: WaitArgT) -> None:
    """Close a coroutine that will not be awaited (faust's `suspend_flow.wait()`), so it is not reported."""
    if isinstance(waitable, types.CoroutineType):
        waitable.close()


async def _resume(coroutine: Coroutine[Any, Any, Any], waiting_on: Any) -> Any:
    """Run `coroutine` on from where it stopped, waiting on `waiting_on`, as a task would have.

    What a coroutine yields to its task is the future it waits on (None: a bare yield, as in
    `asyncio.sleep(0)`); the task resumes it once that future is done. Cancelling this coroutine
    (`wait_first` cancels what is left once the flow is suspended) throws the cancellation into it.
    """
    while True:
        try:
            if waiting_on is None:
                await asyncio.sleep(0)
            else:
                await _Yield(waiting_on)
        except BaseException as error:  # handed to the coroutine, as a task would
            try:
                waiting_on = coroutine.throw(error)
            except StopIteration as done:
                return done.value
            continue
        try:
            waiting_on = coroutine.send(None)
        except StopIteration as done:
            return done.value


class _Yield:
    """Yields `future` to the task once, as the coroutine that yielded it did, without taking its
    result: the coroutine reads it when resumed."""

    __slots__ = ("future",)

    def __init__(self, future: Any) -> None:
        self.future = future

    def __await__(self) -> Generator[Any, None, None]:
        yield self.future


def _guarded(
    consumer: Any, deliver: Callable[[Any], Awaitable[None]], topics: frozenset[str]
) -> Callable[[Any], Awaitable[None]]:
    sequencer: Sequencer[TP] = consumer.sequencer
    holding: Holding = consumer.holding
    app = consumer.app
    held_back: set[TP] = set()  # partitions with a record held back in the rebalance numbered `held_in`
    held_in = -1

    async def on_message(message: Any) -> None:
        nonlocal held_in
        tp = message.tp
        if tp.topic not in topics:
            await deliver(message)
            return
        if app.rebalancing:
            sequencer.dropped(tp)
            holding.held(time.monotonic())
            if held_in != app.rebalancing_count:
                held_in = app.rebalancing_count
                held_back.clear()
            if tp not in held_back:
                held_back.add(tp)
                _log.info(
                    "record %d of %s/%d came during a rebalance; held back, it is read again",
                    message.offset,
                    tp.topic,
                    tp.partition,
                )
            return
        if holding.since is not None:
            holding.ended()
        epoch = sequencer.epoch
        verdict = sequencer.judge(tp, message.offset, time.monotonic())
        if verdict is Verdict.DELIVER:
            expected = sequencer.expected(tp)
            if expected is not None and message.offset > expected:
                _log.error(
                    "offsets %d to %d of %s/%d are not in the log (deleted by retention?); "
                    "folding goes on from %d",
                    expected,
                    message.offset - 1,
                    tp.topic,
                    tp.partition,
                    message.offset,
                )
            await deliver(message)
            sequencer.delivered(tp, message.offset, epoch)
        elif verdict is Verdict.REWIND:
            expected = sequencer.expected(tp)
            assert expected is not None  # a rewind always has a target
            _log.warning(
                "records %d to %d of %s/%d were fetched but not delivered (faust dropped them in a "
                "rebalance); reading them again",
                expected,
                message.offset - 1,
                tp.topic,
                tp.partition,
            )
            await consumer.seek(tp, expected)

    return on_message
