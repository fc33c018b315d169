"""The `policy_versions` table: the policy files of every version served under, kept as they were."""

from __future__ import annotations

from psycopg.types.json import Jsonb

from exchange.api.storage.pool import Connection
from exchange.policy import Policy

_ARCHIVE = """
INSERT INTO policy_versions (version, files) VALUES (%s, %s) ON CONFLICT (version) DO NOTHING
"""


async def archive_policy(conn: Connection, policy: Policy) -> None:
    """Keep `policy`'s files under its version, unless kept already (before its first use is audited)."""
    files = {name: raw.decode("utf-8") for name, raw in sorted(policy.files.items())}
    await conn.execute(_ARCHIVE, (policy.version, Jsonb(files)))
