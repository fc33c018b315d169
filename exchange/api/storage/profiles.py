"""Profiles as the sink stores them: the current one, or the version the exchange knew at an instant."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from exchange.api.storage.documents import profile_from_document
from exchange.api.storage.pool import Connection, fetch_one
from exchange.profile import Profile, empty_profile

_CURRENT = "SELECT version, profile, updated_at AS valid_from FROM profiles WHERE subject_key = %s"
_AS_OF = """
SELECT version, profile, valid_from FROM profile_history
WHERE subject_key = %s AND valid_from <= %s AND %s < coalesce(valid_to, 'infinity')
ORDER BY version DESC LIMIT 1
"""


@dataclass(frozen=True, slots=True)
class StoredProfile:
    """A profile version and since when the exchange knew it (None: no profile, the empty one)."""

    profile: Profile
    valid_from: dt.datetime | None


async def load_profile(conn: Connection, subject_key: str, as_of: dt.datetime | None) -> StoredProfile:
    """The current profile (as_of None) or the one valid at `as_of`; an empty profile when there is none."""
    if as_of is None:
        row = await fetch_one(conn, _CURRENT, (subject_key,))
    else:
        row = await fetch_one(conn, _AS_OF, (subject_key, as_of, as_of))
    if row is None:
        return StoredProfile(empty_profile(subject_key), None)
    return StoredProfile(profile_from_document(row["profile"]), row["valid_from"])
