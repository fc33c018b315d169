"""A benchmark's own world: a topic prefix, a database and local state of its own, all gone afterwards.

`exchange bench api` and `exchange bench pipeline` run the whole exchange beside whatever else uses the
stack (the demo, another benchmark, the tests): their settings (`run_settings`) give every topic, group
and table a name of the run's own, and `isolated` creates the run's database and removes what the run
made, however it ends.
"""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql
from pydantic import SecretStr

from exchange import admin
from exchange.settings import ExchangeSettings


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_settings(settings: ExchangeSettings, kind: str, folder: Path) -> ExchangeSettings:
    """`settings` for one run of the `kind` benchmark: a topic prefix (`bench-{kind}-{id}.`) and a
    database (`bench_{kind}_{id}`) of its own, its local state in `folder`, the processor's web server
    on a free port and no metrics server of its own (`metrics_port` 0)."""
    suffix = uuid.uuid4().hex[:10]
    postgres = settings.postgres.model_copy(update={"database": f"bench_{kind}_{suffix}"})
    return settings.model_copy(
        update={
            "kafka": settings.kafka.model_copy(update={"topic_prefix": f"bench-{kind}-{suffix}."}),
            "postgres": postgres,
            "connectors": settings.connectors.model_copy(
                # The registry table the property connector polls lives in the run's database, so it
                # goes with it.
                update={"state_dir": folder / "connectors", "registry_dsn": SecretStr(postgres.conninfo())}
            ),
            "processor": settings.processor.model_copy(
                update={"datadir": folder / "processor", "web_port": free_port()}
            ),
            "metrics_port": 0,
        }
    )


@contextlib.contextmanager
def isolated(settings: ExchangeSettings) -> Iterator[None]:
    """Create the run's database; afterwards delete the run's topics and consumer groups and drop the
    database, the database even when Kafka cannot be cleaned (its error is raised after)."""
    with psycopg.connect(settings.postgres.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(settings.postgres.database)))
    try:
        yield
    finally:
        try:
            admin.remove_prefixed(settings.kafka, wait_seconds=30.0)
        finally:
            with psycopg.connect(settings.postgres.conninfo("postgres"), autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(settings.postgres.database)
                    )
                )
