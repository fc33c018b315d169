"""The processor commits no source offset before the broker acknowledged what was produced for it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka

from exchange.deliveries import Deliveries, DeliveryError
from exchange.settings import ExchangeSettings, ProcessorSettings
from exchange.streams import create_app


class Stopped(Exception):
    pass


def _stop(error: DeliveryError) -> None:
    raise Stopped(str(error))


async def test_settling_waits_for_every_record_tracked_and_stops_on_a_refused_one() -> None:
    deliveries = Deliveries(5.0, _stop)
    loop = asyncio.get_running_loop()
    first, second = loop.create_future(), loop.create_future()
    deliveries.track(first)
    deliveries.track(second)
    settling = asyncio.ensure_future(deliveries.settle())
    first.set_result("acknowledged")
    await asyncio.sleep(0.01)
    assert not settling.done()  # the second is not acknowledged yet
    second.set_result("acknowledged")
    await settling
    assert len(deliveries) == 0

    refused = loop.create_future()
    refused.set_exception(RuntimeError("MessageSizeTooLargeError"))
    deliveries.track(refused)
    with pytest.raises(Stopped, match=r"refused by Kafka.*MessageSizeTooLarge"):
        await deliveries.settle()


async def test_settling_waits_for_what_was_tracked_before_it_not_for_what_comes_after() -> None:
    # The fold goes on while a commit settles: waiting for its new records too never ended under a
    # steady backlog (nothing was committed until the backlog ran out), here it outlives the timeout.
    deliveries = Deliveries(0.2, _stop)
    loop = asyncio.get_running_loop()
    before, after = loop.create_future(), loop.create_future()
    deliveries.track(before)
    settling = asyncio.ensure_future(deliveries.settle())
    await asyncio.sleep(0)  # settling has begun
    deliveries.track(after)  # the next batch's record, tracked while the commit waits
    before.set_result("acknowledged")
    await settling
    assert len(deliveries) == 1 and not after.done()
    after.set_result("acknowledged")
    await deliveries.settle()  # the next commit's
    assert len(deliveries) == 0


async def test_a_record_never_acknowledged_stops_the_process_after_the_timeout() -> None:
    deliveries = Deliveries(0.05, _stop)
    deliveries.track(asyncio.get_running_loop().create_future())  # handed to no one: never resolved
    with pytest.raises(Stopped, match=r"not acknowledged by Kafka within 0\.05 s"):
        await deliveries.settle()


async def test_the_processor_s_commit_waits_for_its_changelog_and_profile_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # faust's own flush before a commit returned with changelog records still buffered, and a failed
    # delivery was only logged: offsets were committed past records a crash then lost.
    app = create_app(ExchangeSettings(processor=ProcessorSettings(datadir=tmp_path, store="memory://")))
    committed: list[Any] = []

    async def commit(self: Any, offsets: Any, start_new_transaction: bool = True) -> bool:
        committed.append(offsets)
        return True

    monkeypatch.setattr(faust_aiokafka.Consumer, "_commit_offsets", commit)
    produced = asyncio.get_running_loop().create_future()
    app.deliveries.track(produced)
    committing = asyncio.ensure_future(app.consumer._commit_offsets({"tp": 1}))
    await asyncio.sleep(0.01)
    assert committed == []
    produced.set_result("acknowledged")
    assert await committing and committed == [{"tp": 1}]
    assert (
        type(app.tables["profiles"]).send_changelog
        is not type(app.tables["profiles"]).__mro__[1].send_changelog
    )
