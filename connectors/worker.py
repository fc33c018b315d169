"""Runs a generator in a process of its own and streams what it yields back, a few items ahead.

A file connector converts, validates and Avro-encodes its records in such a process while the
connector's own process sends the previous chunk: with kafka-python's send loop holding one core,
the preparing work gets the other. The worker is started with `spawn` (the sending process runs
kafka-python's IO thread, which a fork would copy in an undefined state); it ignores Ctrl-C (the
connector decides when to stop) and ends itself when the connector's process is gone, so a
connector killed with SIGKILL leaves nothing behind.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import signal
from collections.abc import Callable, Generator, Iterator
from typing import Any, TypeVar

from connectors.exceptions import ConnectorError

T = TypeVar("T")
_POLL_SECONDS = 0.5


def in_worker(
    function: Callable[..., Iterator[T]], *args: Any, name: str, prefetch: int = 2
) -> Generator[T, None, None]:
    """Yield what `function(*args)` yields, computed in a worker process at most `prefetch` items ahead.

    An exception raised in the worker is raised here (the same type when it pickles); closing this
    generator early ends the worker.
    """
    context = multiprocessing.get_context("spawn")
    items: multiprocessing.Queue[tuple[str, Any]] = context.Queue(maxsize=prefetch)
    process = context.Process(target=_work, args=(items, function, args), name=name, daemon=True)
    process.start()
    try:
        while True:
            try:
                kind, payload = items.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if not process.is_alive():
                    raise ConnectorError(
                        f"the {name} process ended (exit code {process.exitcode}) without finishing"
                    ) from None
                continue
            if kind == "item":
                yield payload
            elif kind == "error":
                raise payload
            else:
                return
    finally:
        if process.is_alive():
            process.terminate()
        process.join(timeout=10)
        items.close()


def _work(
    items: multiprocessing.Queue[tuple[str, Any]], function: Callable[..., Iterator[Any]], args: Any
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for item in function(*args):
            _put(items, ("item", item))
    except BaseException as exc:  # every failure is reported to the connector
        _put(items, ("error", _picklable(exc)))
        return
    _put(items, ("end", None))


def _put(items: multiprocessing.Queue[tuple[str, Any]], item: tuple[str, Any]) -> None:
    parent = multiprocessing.parent_process()
    while True:
        try:
            items.put(item, timeout=_POLL_SECONDS)
            return
        except queue.Full:
            if parent is None or not parent.is_alive():
                os._exit(0)  # nobody will read on; the queue's feeder thread must not be waited for


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # one that cannot cross is described instead
        return ConnectorError(f"{type(exc).__name__}: {exc}")
    return exc
