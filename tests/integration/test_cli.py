"""Operators' commands against the real PostgreSQL: a database not migrated yet, a subject with no
profile, and a data-use history longer than a page."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from support import exchange_env

from exchange import database
from exchange.api.storage import audit as audit_table
from exchange.api.storage.pool import create_pool, transaction
from exchange.audit import AuditEntry
from exchange.facts import FACT_NAMES
from exchange.settings import ExchangeSettings
from exchange.subjects import subject_key

CITIZEN = "440103198403037020"


def _exchange(settings: ExchangeSettings, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**exchange_env(settings, state), "COLUMNS": "80"}  # a narrow terminal, or a pipe
    return subprocess.run(
        [sys.executable, "-m", "exchange", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_reading_a_database_not_migrated_yet_says_to_migrate_it(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    for args in (("facts", CITIZEN), ("audit", "verify"), ("audit", "history", CITIZEN)):
        done = _exchange(settings, tmp_path, *args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert "exchange migrate" in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)


def test_the_facts_table_names_every_fact_whole_and_says_when_no_profile_was_known(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    database.migrate(settings.postgres)
    done = _exchange(settings, tmp_path, "facts", CITIZEN)
    assert done.returncode == 0, done.stderr
    # Rich cut names to the width: social.unemployment.months_pai… could read as another fact.
    assert [name for name in sorted(FACT_NAMES) if name not in done.stdout] == []
    assert "no profile was known then" in " ".join(done.stdout.split())


def test_the_data_use_history_command_lists_every_entry(settings: ExchangeSettings, tmp_path: Path) -> None:
    # It stopped at the newest 500, saying nothing.
    database.migrate(settings.postgres)
    key = subject_key(CITIZEN, settings.subject_secret.get_secret_value().encode())
    entries = [
        AuditEntry(
            caller="housing-bureau",
            action="verification",
            outcome="allowed",
            policy_version="test",
            purpose="public-rental-housing",
            subject_key=key,
        )
        for _ in range(620)
    ]

    async def append() -> None:
        pool = create_pool(settings)
        await pool.open(wait=True)
        try:
            async with transaction(pool) as conn:
                await audit_table.append_batch(conn, entries)
        finally:
            await pool.close()

    asyncio.run(append())
    done = _exchange(settings, tmp_path, "audit", "history", CITIZEN)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1 + 620  # the header, then every entry
