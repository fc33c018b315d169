"""`exchange facts ID [--reference-date D] [--as-of T] [--json]`: every fact of a subject, with lineage."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table

from exchange import facts
from exchange.api import evaluation
from exchange.api.exceptions import InvalidRequestError
from exchange.api.storage.lineage import resolve
from exchange.api.storage.profiles import StoredProfile, load_profile
from exchange.exceptions import ExchangeError
from exchange.local_time import today
from exchange.settings import ExchangeSettings
from exchange.subjects import normalise_citizen_id, subject_key

_console = Console()
_SHOWN = 3  # lineage records listed per fact in the table


def register(commands: Any) -> None:
    """Add `exchange facts`."""
    parser = commands.add_parser("facts", help="every fact of a subject, with its lineage")
    parser.add_argument("citizen_id", help="公民身份号码 of the subject")
    parser.add_argument(
        "--reference-date",
        type=dt.date.fromisoformat,
        default=None,
        help="the date facts are evaluated on (default: today in Asia/Shanghai)",
    )
    parser.add_argument(
        "--as-of",
        type=dt.datetime.fromisoformat,
        default=None,
        help="an instant (without a zone: Asia/Shanghai time): answer from what the exchange knew then "
        "(default: now)",
    )
    parser.add_argument("--json", action="store_true", help="an object keyed by fact name, lineage beside it")
    parser.set_defaults(run=_facts)


async def _load(
    settings: ExchangeSettings, key: str, as_of: dt.datetime | None, reference: dt.date
) -> tuple[StoredProfile, facts.Facts]:
    """The profile known at `as_of` and its facts on `reference`, lineage read from the record tables."""
    try:
        async with await psycopg.AsyncConnection.connect(settings.postgres.conninfo()) as conn:
            stored = await load_profile(conn, key, as_of)
            return stored, await resolve(conn, key, facts.compute(stored.profile, reference))
    except psycopg.OperationalError as exc:
        raise ExchangeError(f"cannot reach PostgreSQL at {settings.postgres.url()}: {exc}") from exc
    except psycopg.errors.UndefinedTable as exc:
        raise ExchangeError(
            f"the database {settings.postgres.database} has no exchange views yet "
            f"({exc.diag.message_primary}): run `exchange migrate`, then the sink"
        ) from exc


def _facts(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    citizen_id = normalise_citizen_id(args.citizen_id.strip())  # typed on a command line
    key = subject_key(citizen_id, settings.subject_secret.get_secret_value().encode())
    # As the API reads them: today and a time without a zone in the departments' zone (Asia/Shanghai),
    # and an instant still to come refused.
    reference = args.reference_date or today()
    try:
        as_of = evaluation.known_instant(args.as_of, ("--as-of",))
    except InvalidRequestError as exc:  # the API's words for its parameter, said for this option
        raise ExchangeError(exc.message.replace("leave as_of out", "leave --as-of out")) from exc
    stored, computed = asyncio.run(_load(settings, key, as_of, reference))
    values = facts.as_json(computed)
    document: dict[str, Any] = {
        "reference_date": reference.isoformat(),
        "as_of": as_of.isoformat() if as_of else None,
        "profile_version": stored.profile.version if stored.valid_from else None,
        "known_since": stored.valid_from.isoformat() if stored.valid_from else None,
        "facts": values,
        "lineage": {name: [ref._asdict() for ref in fact.lineage] for name, fact in sorted(computed.items())},
    }
    if args.json:
        print(json.dumps(document, ensure_ascii=False, indent=1))
        return 0
    if stored.valid_from is None:
        known = "no profile was known then: the facts of a subject with no records"
    else:
        known = f"profile version {stored.profile.version}, known since {stored.valid_from.isoformat()}"
    table = Table(
        title=f"reference date {reference}, as of {as_of or 'now'}",
        caption=f"{known}; lineage: up to {_SHOWN} records per fact (all, with their positions: --json)",
    )
    table.add_column("fact", no_wrap=True)  # a name cut short could read as another one
    table.add_column("value", overflow="fold")
    table.add_column("lineage", overflow="fold")
    for name, value in values.items():
        refs = computed[name].lineage
        shown = ", ".join(f"{r.dataset}:{r.source_record_id} v{r.source_version}" for r in refs[:_SHOWN])
        table.add_row(
            name,
            json.dumps(value, ensure_ascii=False),
            shown + (f" (+{len(refs) - _SHOWN})" if len(refs) > _SHOWN else ""),
        )
    _console.print(table)
    return 0
