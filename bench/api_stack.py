"""The exchange `exchange bench api` measures: its own topics, database and processes, gone afterwards.

Everything runs as subprocesses with the bench's settings (`child_environment`): the processor and the
sink under `exchange.supervisor`, the connectors to their end, the API (`exchange api`) and the
baseline (`python -m bench.bare_api`), each one uvicorn worker on a free loopback port.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg

from bench.isolation import free_port, run_settings
from exchange.settings import ExchangeSettings, child_environment
from exchange.supervisor import Supervised, Supervisor

FILES = (("identity", "identity.csv"), ("tax", "tax.csv"), ("social", "social.jsonl"))


def bench_settings(settings: ExchangeSettings, folder: Path) -> ExchangeSettings:
    """The run's own settings (`run_settings`), the API on a free port with a signing key in `folder`."""
    bench = run_settings(settings, "api", folder)
    return bench.model_copy(
        update={
            "api": bench.api.model_copy(
                update={"port": free_port(), "signing_key_path": folder / "signing-key.pem"}
            )
        }
    )


# Each started connector's log, by pid, to quote when one fails.
_LOGS: dict[int, Path] = {}


def start_connectors(
    settings: ExchangeSettings, exports: Path, logs: Path, *, registry: bool
) -> list[subprocess.Popen[bytes]]:
    """`exchange connect` for each file of `exports` side by side, each running to the end of its
    file; with `registry`, property.sql is loaded into the registry table and the property connector
    reads it too (once only: generated registries reuse title numbers)."""
    sources: list[tuple[str, ...]] = [(department, str(exports / name)) for department, name in FILES]
    if registry:
        dsn = settings.connectors.registry_dsn.get_secret_value()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute((exports / "property.sql").read_text(encoding="utf-8").encode())
        # The DSN, password and all, from the environment (the settings): `ps` shows command lines to all.
        sources.append(("property",))
    logs.mkdir(parents=True, exist_ok=True)
    started = []
    for department, *source in sources:
        log = logs / f"connect-{department}-{exports.name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "exchange", "connect", department, *source],
                env=child_environment(settings),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        _LOGS[process.pid] = log
        started.append(process)
    return started


def finished(connectors: list[subprocess.Popen[bytes]]) -> bool:
    """Whether every connector has exited; `RuntimeError` with the end of its log if one failed (the
    logs go with the benchmark's folder)."""
    codes = [process.poll() for process in connectors]
    for process, code in zip(connectors, codes, strict=True):
        if code not in (None, 0):
            command = " ".join(map(str, process.args[3:]))  # type: ignore[index]
            raise RuntimeError(f"{command} exited with {code}; the end of its log:\n{_tail(process)}")
    return all(code == 0 for code in codes)


def _tail(process: subprocess.Popen[bytes], lines: int = 20) -> str:
    log = _LOGS.get(process.pid)
    if log is None or not log.exists():
        return "(no log)"
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def start_bare(supervisor: Supervisor, settings: ExchangeSettings) -> Supervised:
    """The baseline server, supervised (checked and stopped) with the exchange's processes."""
    supervisor.logs.mkdir(parents=True, exist_ok=True)
    log = supervisor.logs / "bare.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.bare_api"],
            env=child_environment(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    supervised = Supervised("bare", process, log)
    supervisor.running.append(supervised)
    return supervised


def wait_answering(
    supervisor: Supervisor,
    method: str,
    url: str,
    body: object,
    timeout: float = 60,
    headers: dict[str, str] | None = None,
) -> None:
    """Wait until `url` answers 200 (the server is up and its pool open)."""
    deadline = time.monotonic() + timeout
    while True:
        supervisor.check()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.request(method, url, json=body, headers=headers, timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer 200 within {timeout:.0f} s")
        time.sleep(0.3)


def wait_relaying(supervisor: Supervisor, settings: ExchangeSettings, timeout: float = 60) -> None:
    """Wait until the API's audit relay has published every audit entry written so far (at least one):
    its process has started, connected and relayed, so its start-up (imports, Kafka metadata, the
    first pass) is not measured as a cost of the first phase's requests."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(settings.postgres.conninfo(), autocommit=True) as conn:
        while True:
            supervisor.check()
            row = conn.execute(
                "SELECT (SELECT next_seq FROM audit_relay), (SELECT coalesce(max(seq), 0) FROM audit_log)"
            ).fetchone()
            if row is not None and 0 < row[1] < row[0]:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the API's audit relay published nothing within {timeout:.0f} s")
            time.sleep(0.3)
