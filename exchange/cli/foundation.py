"""`exchange stack …`, `topics ensure`, `migrate`, `schemas check|freeze`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from exchange import admin, compatibility, database, schemas, stack
from exchange.settings import ExchangeSettings
from exchange.topics import SCHEMAS

_console = Console()
Subparsers = Any  # argparse's private _SubParsersAction


def register(commands: Subparsers) -> None:
    """Add the foundation commands."""
    stack_parser = commands.add_parser("stack", help="the local Kafka and PostgreSQL")
    verbs = stack_parser.add_subparsers(dest="verb", required=True)
    verbs.add_parser("up", help="start Kafka and PostgreSQL (idempotent)").set_defaults(run=_stack_up)
    verbs.add_parser("down", help="stop what `up` started").set_defaults(run=_stack_down)
    status = verbs.add_parser("status", help="version, address and health of each service")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(run=_stack_status)

    topics = commands.add_parser("topics", help="the exchange's Kafka topics")
    topic_verbs = topics.add_subparsers(dest="verb", required=True)
    topic_verbs.add_parser(
        "ensure", help="create the declared topics that are missing; publish the schema set"
    ).set_defaults(run=_topics)

    commands.add_parser("migrate", help="apply PostgreSQL migrations").set_defaults(run=_migrate)

    schema_parser = commands.add_parser("schemas", help="the Avro schema set")
    schema_verbs = schema_parser.add_subparsers(dest="verb", required=True)
    schema_verbs.add_parser("check", help="fail when a schema breaks backward compatibility").set_defaults(
        run=_schemas_check
    )


def _stack_up(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    with _console.status("starting PostgreSQL and Kafka…"):
        stack.up(settings)
    return _stack_status(settings, argparse.Namespace(json=False))


def _stack_down(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    stack.down(settings)
    _console.print("stack stopped")
    return 0


def _stack_status(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    services = stack.status(settings)
    if args.json:
        print(json.dumps([service.as_dict() for service in services], indent=2))
    else:
        table = Table("service", "version", "address", "health")
        for service in services:
            health = (
                "[green]healthy[/]"
                if service.healthy
                else ("[yellow]running, not answering[/]" if service.running else "[red]stopped[/]")
            )
            table.add_row(service.name, service.version or "-", service.address, health)
        _console.print(table)
    return 0 if all(service.healthy for service in services) else 3


def _topics(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    created = admin.ensure_topics(settings.kafka)
    _console.print(f"created {len(created)} topics" + (": " + ", ".join(created) if created else ""))
    published = admin.publish_schemas(settings.kafka)
    _console.print(f"published {published} schema versions to {SCHEMAS.full_name(settings.kafka)}")
    return 0


def _migrate(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    applied = database.migrate(settings.postgres)
    _console.print(
        f"applied {len(applied)} migrations" + "".join(f"\n  {m.version:04d} {m.name}" for m in applied)
    )
    return 0


def _schemas_check(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    problems = compatibility.check_all()
    for problem in problems:
        _console.print(
            f"[red]{problem.name}[/]: cannot read {problem.version}: " + "; ".join(problem.messages)
        )
    if not problems:
        versions = sum(len(schemas.history(name)) for name in schemas.RECORD_SCHEMAS)
        _console.print(
            f"{len(schemas.RECORD_SCHEMAS)} schemas backward compatible with {versions} earlier versions"
        )
    return 1 if problems else 0
