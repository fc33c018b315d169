"""`exchange api`, `approvals`, `consent grant|revoke`, `audit verify`, `audit history`, `keys rotate`."""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

import psycopg
from kafka.errors import KafkaError
from rich.console import Console
from rich.table import Table

from exchange import consent, database
from exchange.admin import kafka_unreachable
from exchange.api.signing import rotate_key
from exchange.api.storage import audit as audit_table
from exchange.audit import ChainProblem, ChainVerifier, PublishedChain
from exchange.exceptions import ConfigurationError, InvalidIdentifierError, StorageError
from exchange.logs import read_all
from exchange.policy import load_policy, policy_version
from exchange.settings import ExchangeSettings
from exchange.subjects import normalise_citizen_id, subject_key
from exchange.topics import AUDIT
from monitoring.serve import start_metrics_server

_console = Console()


def register(commands: Any) -> None:
    """Add the API, approvals, consent and audit commands."""
    commands.add_parser("api", help="serve the HTTP API for approval services").set_defaults(run=_api)
    approvals = commands.add_parser("approvals", help="decide applications (秒批) and materialise consent")
    approvals.add_argument("--until-idle", action="store_true", help="stop once every partition is read")
    approvals.set_defaults(run=_approvals)

    consent_parser = commands.add_parser("consent", help="a subject's consent (授权) or delegation (代办)")
    consent_verbs = consent_parser.add_subparsers(dest="verb", required=True)
    for verb in ("grant", "revoke"):
        command = consent_verbs.add_parser(verb, help=f"{verb} consent to a caller for a purpose")
        command.add_argument("--subject", required=True, help="公民身份号码 of the subject")
        command.add_argument("--caller", required=True, help="caller code of callers.json")
        command.add_argument("--purpose", required=True, help="事项 code of the caller's grant")
        command.add_argument("--delegate", help="公民身份号码 of the person allowed to apply for the subject")
        command.set_defaults(run=_consent, op=verb)

    audit = commands.add_parser("audit", help="the hash-chained audit log (电子监察)")
    audit_verbs = audit.add_subparsers(dest="verb", required=True)
    audit_verbs.add_parser(
        "verify", help="check the whole chain; non-zero at the first bad row"
    ).set_defaults(run=_audit_verify)
    history = audit_verbs.add_parser("history", help="who used a subject's data, for which purpose, when")
    history.add_argument("subject", help="公民身份号码 of the subject")
    history.set_defaults(run=_audit_history)

    keys = commands.add_parser("keys", help="the proof signing key")
    key_verbs = keys.add_subparsers(dest="verb", required=True)
    key_verbs.add_parser(
        "rotate",
        help="a new signing key; the old one's public key is kept, so its proofs still verify "
        "(restart the API and approvals to sign with the new one)",
    ).set_defaults(run=_keys_rotate)


def _api(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    import uvicorn

    from exchange.api import create_api
    from exchange.api.serving import server_options

    database.migrate(settings.postgres)
    uvicorn.run(create_api(settings), **server_options(settings))
    return 0


def _approvals(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    from consumers.approvals import Approvals

    start_metrics_server(settings.metrics_port)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        counts = await Approvals(settings).run(stop, until_idle=args.until_idle)
        table = Table("handled", "count")
        for name, count in sorted(counts.items()):
            table.add_row(name, f"{count:,}")
        _console.print(table)
        return 0

    return asyncio.run(main())


def _key(settings: ExchangeSettings, citizen_id: str, option: str) -> str:
    """The subject key of the citizen ID given as `option`; an invalid ID is refused naming the option."""
    try:
        normalised = normalise_citizen_id(citizen_id.strip())  # typed on a command line
    except InvalidIdentifierError as exc:
        raise InvalidIdentifierError(exc.reason, f"{option}: {exc.message}") from exc
    return subject_key(normalised, settings.subject_secret.get_secret_value().encode())


def _consent(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    policy = load_policy(settings.api.policy_dir)
    if args.purpose not in policy.grants.get(args.caller, {}):
        raise ConfigurationError(
            f"caller {args.caller} has no grant for purpose {args.purpose} in grants.json"
        )
    delegate = None if args.delegate is None else _key(settings, args.delegate, "--delegate")
    event = consent.consent_event(
        _key(settings, args.subject, "--subject"), args.caller, args.purpose, args.op, delegate_key=delegate
    )
    consent.publish(settings, [event])
    _console.print(f"consent {args.op} published ({event['event_id']})")
    return 0


async def _connect(settings: ExchangeSettings) -> psycopg.AsyncConnection[Any]:
    try:
        return await psycopg.AsyncConnection.connect(settings.postgres.conninfo())
    except psycopg.OperationalError as exc:
        raise StorageError(f"cannot reach PostgreSQL at {settings.postgres.url()}: {exc}") from exc


FIRST_POSSIBLE_SEQ = -(2**63)  # bigint's least
_T = TypeVar("_T")


def _run_on_tables(settings: ExchangeSettings, work: Coroutine[Any, Any, _T]) -> _T:
    """Run `work` against the exchange's tables; a database not migrated yet is said so, not a traceback."""
    try:
        return asyncio.run(work)
    except psycopg.errors.UndefinedTable as exc:
        raise StorageError(
            f"the database {settings.postgres.database} has no audit log yet ({exc.diag.message_primary}): "
            "run `exchange migrate`"
        ) from exc


_ARCHIVED = "SELECT version, files FROM policy_versions ORDER BY first_used_at, version"
_NOT_ARCHIVED = """
SELECT DISTINCT policy_version FROM audit_log
WHERE policy_version NOT IN (SELECT version FROM policy_versions) ORDER BY 1
"""


def altered_policies(archived: list[tuple[str, dict[str, str]]]) -> list[str]:
    """The archived policy versions whose files do not hash to the version they are kept under."""
    altered = []
    for version, files in archived:
        try:
            matches = policy_version({name: text.encode("utf-8") for name, text in files.items()}) == version
        except (KeyError, AttributeError):  # a file missing, or not text
            matches = False
        if not matches:
            altered.append(version)
    return altered


def _published(settings: ExchangeSettings) -> PublishedChain:
    """The hash of every row the relay has published on exchange.audit.v1, read to the topic's end now.

    Read before the database's snapshot is taken: the relay publishes committed rows only, so every
    row read here is in that snapshot. (Read after it, a row appended and published meanwhile would
    look like a row removed.) Kafka that cannot be reached is a `StackError` saying how to start it:
    without the published copy the chain cannot be verified, and is not said to be.
    """
    topic = AUDIT.full_name(settings.kafka)
    published = PublishedChain(topic)
    try:
        for record in read_all(settings.kafka, topic):
            if record.schema == "audit":
                published.add(int(record.value["seq"]), str(record.value["hash"]))
    except KafkaError as exc:
        raise kafka_unreachable(settings.kafka, exc) from exc
    return published


def _audit_verify(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    """Verify the audit chain against itself and against what the relay published on exchange.audit.v1.

    The database alone is no reference: its hash is unkeyed and its head row unguarded, so whoever can
    write it can remove rows at the end, or rewrite a row with every hash after it, and the chain still
    holds in itself. The topic (kept forever) cannot be rewritten that way: every row published must
    be in the log with the hash it was published with, and the relay's position may not be past the
    log's end. Rows not published yet are fine (the relay may lag). Exit 2 naming the first row where
    the chain does not hold, or an archived policy version whose files were altered.
    """
    published = _published(settings)  # first: see `_published`

    async def check() -> tuple[ChainProblem | None, ChainVerifier, list[str], list[str]]:
        async with await _connect(settings) as conn:
            # One snapshot for every page, the head and the relay's position: appends committed meanwhile
            # by a running API would otherwise leave the head past the last row read, a truncation that
            # is not one.
            await conn.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
            await conn.set_read_only(True)
            async with conn.transaction():
                verifier = ChainVerifier(published)
                # From the lowest seq there is, not from 1: a row put below the chain's start is named.
                async for row in audit_table.rows_from(conn, FIRST_POSSIBLE_SEQ):
                    if verifier.feed(row) is not None:
                        break
                problem = verifier.finish(
                    await audit_table.head(conn), await audit_table.relay_position(conn)
                )
                archived = await (await conn.execute(_ARCHIVED)).fetchall()
                missing = await (await conn.execute(_NOT_ARCHIVED)).fetchall()
                return problem, verifier, altered_policies(archived), [row[0] for row in missing]

    problem, verifier, altered, missing = _run_on_tables(settings, check())
    if problem is not None:
        _console.print(f"[red]audit chain broken at row {problem.seq}[/] ({problem.kind}): {problem.message}")
        return 2
    if altered:
        _console.print(
            f"[red]policy versions altered[/]: the files kept for {', '.join(altered)} do not hash to it"
        )
        return 2
    _console.print(
        f"audit chain intact: {verifier.rows:,} rows, "
        f"{verifier.published_rows:,} of them as published on {published.where}"
    )
    if missing:  # rows written before the policy files were kept (migration 0006)
        _console.print(f"[yellow]no policy files kept for[/] {', '.join(missing)}")
    return 0


def _keys_rotate(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    retired, new = rotate_key(settings.api)
    _console.print(f"signing key {retired} retired (its public key in {settings.api.retired_keys_path})")
    _console.print(f"signing key {new} in {settings.api.signing_key_path}: restart the API and approvals")
    return 0


def _audit_history(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    key = _key(settings, args.subject, "ID")

    async def read() -> list[dict[str, Any]]:
        async with await _connect(settings) as conn:
            return await audit_table.subject_history(conn, key, limit=None)  # all of it

    # Plain lines, never cut to the terminal's width: this is a record someone may need in full.
    print("at\tcaller\tpurpose\taction\toutcome")
    for row in _run_on_tables(settings, read()):
        outcome = row["outcome"] + (f" ({row['reason']})" if row["reason"] else "")
        at = row["at"].isoformat(timespec="seconds")
        print("\t".join((at, row["caller"], row["purpose"] or "-", row["action"], outcome)))
    return 0
