"""Profiles as the sink stores them: the current one, or the version the exchange knew at an instant.

Each query takes the version the reader has decoded already (`ProfileCache`) and sends the document
only when the stored version differs, as text: decoding it (orjson, then `profile_from_document`)
costs more than the query, so it is done once per subject and version.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson

from exchange.api.profile_cache import ProfileCache
from exchange.api.storage.documents import profile_from_document
from exchange.api.storage.pool import Connection, fetch_one
from exchange.profile import Profile, empty_profile

# %(known)s: the version the reader holds decoded, or NULL. One row, the subject's profile or none
# (version NULL), with when PostgreSQL received the statement: an instant before its snapshot, on the
# clock that dated the versions (exchange.api.evaluation labels a current answer with it).
_CURRENT = """
SELECT statement_timestamp() AS asked_at, p.version,
       CASE WHEN p.version = %(known)s THEN NULL ELSE p.profile::text END AS profile,
       p.updated_at AS valid_from
FROM (SELECT) AS asked LEFT JOIN profiles AS p ON p.subject_key = %(subject_key)s
"""
_AS_OF = """
SELECT version, CASE WHEN version = %(known)s THEN NULL ELSE profile::text END AS profile, valid_from
FROM profile_history
WHERE subject_key = %(subject_key)s AND valid_from <= %(as_of)s AND %(as_of)s < coalesce(valid_to, 'infinity')
ORDER BY version DESC LIMIT 1
"""


@dataclass(frozen=True, slots=True)
class StoredProfile:
    """A profile version and since when the exchange knew it (None: no profile, the empty one); for the
    current one, when PostgreSQL was asked for it (`_CURRENT`)."""

    profile: Profile
    valid_from: dt.datetime | None
    asked_at: dt.datetime | None = None


async def load_profile(
    conn: Connection, subject_key: str, as_of: dt.datetime | None, cache: ProfileCache | None = None
) -> StoredProfile:
    """The current profile (as_of None) or the one valid at `as_of`; an empty profile when there is none.

    With `cache`, a version decoded before is taken from it and a newly decoded one is put in it.
    """
    known = None if cache is None else cache.version(subject_key)
    params: dict[str, Any] = {"known": known, "subject_key": subject_key, "as_of": as_of}
    row = await fetch_one(conn, _CURRENT if as_of is None else _AS_OF, params)
    asked_at = None if row is None else row.get("asked_at")
    if row is None or row["version"] is None:
        return StoredProfile(empty_profile(subject_key), None, asked_at)
    profile = None if cache is None else cache.get(subject_key, int(row["version"]))
    if profile is None:
        if row["profile"] is None:  # the cached version was dropped since the query: read it again
            return await load_profile(conn, subject_key, as_of)
        profile = profile_from_document(orjson.loads(row["profile"]))
        if cache is not None:
            cache.put(profile)
    return StoredProfile(profile, row["valid_from"], asked_at)
