"""`AuditAppender.append` as seen by one waiting request: it gets its batch's error; cancelled just as
its batch failed, nothing is logged as an exception nobody retrieved (without a callback per request);
the appender cancelled while it paces batches tells the requests waiting instead of leaving them."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from exchange.api.appender import AuditAppender
from exchange.audit import AuditEntry
from exchange.exceptions import StorageError


def test_a_request_cancelled_as_its_batch_fails_leaves_no_unretrieved_error() -> None:
    logged: list[dict[str, Any]] = []

    async def scenario() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: logged.append(context))
        pool: Any = None
        appender = AuditAppender(pool)
        appender._flushing = asyncio.ensure_future(asyncio.sleep(0))  # no batch written here: the test's
        entry = AuditEntry(caller="bank", action="verification", outcome="allowed", policy_version="v1")
        waiting = asyncio.create_task(appender.append(entry))
        await asyncio.sleep(0)  # the request now waits for its batch
        ((_, future),) = appender._waiting
        future.set_exception(StorageError("the batch failed"))
        waiting.cancel()  # before the request wakes up to read the error
        with pytest.raises(asyncio.CancelledError):
            await waiting
        del future
        appender._waiting.clear()
        gc.collect()
        await asyncio.sleep(0)

    asyncio.run(scenario())
    assert not [context for context in logged if "never retrieved" in context.get("message", "")]


def test_a_waiting_request_gets_its_batch_s_error() -> None:
    async def scenario() -> None:
        pool: Any = None
        appender = AuditAppender(pool)
        appender._flushing = asyncio.ensure_future(asyncio.sleep(0))
        entry = AuditEntry(caller="bank", action="verification", outcome="allowed", policy_version="v1")
        waiting = asyncio.create_task(appender.append(entry))
        await asyncio.sleep(0)
        ((_, future),) = appender._waiting
        future.set_exception(StorageError("the batch failed"))
        with pytest.raises(StorageError, match="the batch failed"):
            await waiting

    asyncio.run(scenario())


def test_requests_waiting_while_the_appender_is_cancelled_between_batches_are_told() -> None:
    async def scenario() -> None:
        pool: Any = None  # nothing is written: the batch the appender paces for never starts
        appender = AuditAppender(pool, min_interval=60.0)
        appender._last_start = asyncio.get_running_loop().time()  # a batch has just started
        entry = AuditEntry(caller="bank", action="verification", outcome="allowed", policy_version="v1")
        waiting = asyncio.create_task(appender.append(entry))
        await asyncio.sleep(0.01)  # the request waits; the flush task waits out the interval
        flushing = appender._flushing
        assert flushing is not None and not waiting.done()
        flushing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(waiting, timeout=5)
        assert appender._waiting == [] and appender._flushing is None

    asyncio.run(scenario())
