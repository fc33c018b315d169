"""Decoded profiles reused between requests (exchange.api.profile_cache) on the real PostgreSQL: the
document is sent and decoded once per subject and version, and a newer version is read at once."""

from __future__ import annotations

import datetime as dt

import psycopg
from api_support import person_document
from psycopg.types.json import Jsonb

from exchange import database
from exchange.api.profile_cache import ProfileCache
from exchange.api.storage.pool import create_pool
from exchange.api.storage.profiles import load_profile
from exchange.settings import ExchangeSettings

KEY = "k" * 64
CITIZEN = "440103198403037020"


def _store(settings: ExchangeSettings, version: int, status: str | None) -> None:
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        conn.execute(
            "INSERT INTO profiles (subject_key, version, profile, updated_at, topic, kafka_partition, "
            "kafka_offset) VALUES (%s, %s, %s, now(), 'profiles', 0, %s) ON CONFLICT (subject_key) DO "
            "UPDATE SET version = excluded.version, profile = excluded.profile",
            (KEY, version, Jsonb(person_document(KEY, CITIZEN, version, status, offset=version)), version),
        )


async def test_a_profile_is_decoded_once_per_version_and_a_newer_one_read_at_once(
    settings: ExchangeSettings,
) -> None:
    database.migrate(settings.postgres)
    _store(settings, 1, None)
    cache = ProfileCache(8)
    pool = create_pool(settings)
    await pool.open(wait=True)
    try:
        async with pool.connection() as conn:
            first = await load_profile(conn, KEY, None, cache)
            again = await load_profile(conn, KEY, None, cache)
            uncached = await load_profile(conn, KEY, None)
            _store(settings, 2, "normal")
            newer = await load_profile(conn, KEY, None, cache)
            missing = await load_profile(conn, "m" * 64, None, cache)
    finally:
        await pool.close()
    assert first.profile.version == 1 and not first.profile.persons
    assert again.profile is first.profile  # from the cache: the query sent no document
    assert uncached.profile == first.profile and uncached.profile is not first.profile
    assert newer.profile.version == 2 and cache.version(KEY) == 2
    assert [entry.data.status for entry in newer.profile.persons.values() if entry.data] == ["normal"]
    assert isinstance(newer.valid_from, dt.datetime)
    assert missing.profile.version == 0 and missing.valid_from is None
