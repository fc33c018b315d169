"""Runs a generator in a process of its own and streams what it yields back, as pickles over a pipe.

A file connector converts, validates and Avro-encodes its records in such a process while the
connector's own process sends the previous chunk: with kafka-python's send loop holding one core,
the preparing work gets the other. The worker is a fresh interpreter (`python -m connectors.worker`)
importing only the generator's module, not the exchange's whole command line, and not a fork of a
process running kafka-python's IO thread. It ignores Ctrl-C (the connector decides when to stop);
when the connector is gone its next write fails and it ends, so a connector killed with SIGKILL
leaves nothing behind. The pipe is the backpressure: the worker runs at most about a chunk ahead.
"""

from __future__ import annotations

import importlib
import os
import pickle
import signal
import subprocess
import sys
from collections.abc import Callable, Generator, Iterator
from typing import IO, Any, TypeVar

from connectors.exceptions import ConnectorError

T = TypeVar("T")


def in_worker(function: Callable[..., Iterator[T]], *args: Any, name: str) -> Generator[T, None, None]:
    """Yield what `function(*args)` yields, computed in a worker process.

    `function` must be importable by its module and name. An exception raised in the worker is raised
    here (the same type when it pickles); closing this generator early ends the worker.
    """
    # The worker imports from where this process imports, as multiprocessing's spawn does.
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "connectors.worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=environment,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        pickle.dump((function.__module__, function.__qualname__, args), process.stdin)
        process.stdin.close()
        while True:
            try:
                kind, payload = pickle.load(process.stdout)
            except EOFError:
                code = process.wait()
                raise ConnectorError(
                    f"the {name} process ended (exit code {code}) without finishing"
                ) from None
            if kind == "item":
                yield payload
            elif kind == "error":
                raise payload
            else:
                return
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()


def _serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    module, qualname, args = pickle.load(requests)
    function: Any = importlib.import_module(module)
    for part in qualname.split("."):
        function = getattr(function, part)
    try:
        for item in function(*args):
            _reply(replies, ("item", item))
    except Exception as exc:  # every failure is reported to the connector
        _reply(replies, ("error", _picklable(exc)))
        return
    _reply(replies, ("end", None))


def _reply(replies: IO[bytes], message: tuple[str, Any]) -> None:
    pickle.dump(message, replies, protocol=pickle.HIGHEST_PROTOCOL)
    replies.flush()


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # one that cannot cross is described instead
        return ConnectorError(f"{type(exc).__name__}: {exc}")
    return exc


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _serve(sys.stdin.buffer, sys.stdout.buffer)
    except BrokenPipeError:  # the connector is gone: nobody reads on
        sys.exit(0)
