"""`exchange bench …`: benchmarks that print their figure and the baseline measured in the same run."""

from __future__ import annotations

import argparse
from typing import Any

from exchange.settings import ExchangeSettings


def register(commands: Any) -> None:
    """Add the benchmark commands."""
    bench = commands.add_parser("bench", help="benchmarks, each with its baseline measured in the same run")
    kinds = bench.add_subparsers(dest="benchmark", required=True)
    connect = kinds.add_parser("connect", help="connector records/s against a bare kafka-python send loop")
    connect.add_argument("--records", type=int, default=1_000_000)
    connect.add_argument(
        "--departments",
        nargs="+",
        default=["identity", "tax", "social"],
        choices=["identity", "tax", "social"],
    )
    connect.add_argument(
        "--ceiling-processes",
        type=int,
        default=3,
        help="parallel bare send loops measuring the machine's ceiling (default 3: two cores and the broker)",
    )
    connect.set_defaults(run=_connect)
    pipeline = kinds.add_parser(
        "pipeline",
        help="end to end, freshness, fold and sink rates, each against its baseline, and where the time goes",
    )
    pipeline.add_argument("--people", type=int, default=3000, help="the population of the exports")
    pipeline.add_argument(
        "--processors",
        type=int,
        default=1,
        help="`exchange process` workers in the end-to-end and freshness runs",
    )
    pipeline.set_defaults(run=_pipeline)
    api = kinds.add_parser(
        "api", help="verifications and proofs requests/s and p50/p99 against a bare Starlette route"
    )
    api.add_argument("--people", type=int, default=500, help="the population the requests ask about")
    api.add_argument(
        "--load-people", type=int, default=4000, help="people published during each phase under load"
    )
    api.add_argument("--requests", type=int, default=3000, help="requests per phase")
    api.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    api.add_argument("--phase-seconds", type=float, default=60.0, help="the longest a phase may run")
    api.add_argument(
        "--rounds",
        type=int,
        default=3,
        choices=range(1, 100),
        metavar="ROUNDS",
        help="idle verifications and bare route phases, in alternation (1 to 99)",
    )
    api.add_argument(
        "--rates",
        type=_rates,
        default=(1000.0, 1500.0, 2000.0),
        metavar="R1,R2,…",
        help="the open-loop phases: idle verifications due at each of these rates per second "
        "(default 1000,1500,2000; the goal is judged at 2000)",
    )
    api.add_argument("--rate-seconds", type=float, default=5.0, help="how long the open-loop phase sends")
    api.set_defaults(run=_api)
    postgres = kinds.add_parser(
        "postgres", help="a query's client CPU through the stack's socket against loopback TCP"
    )
    postgres.add_argument("--queries", type=int, default=5000, help="queries per loop")
    postgres.add_argument("--rounds", type=int, default=3, help="socket and TCP loops, in alternation")
    postgres.set_defaults(run=_postgres)


def _connect(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    from bench import connect

    connect.run(settings, args.records, args.departments, args.ceiling_processes)
    return 0


def _pipeline(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    from bench import pipeline

    pipeline.run(settings, args.people, processors=args.processors)
    return 0


def _rates(text: str) -> tuple[float, ...]:
    """`--rates`: comma-separated positive rates per second."""
    try:
        rates = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected rates per second such as 1000,2000, got {text!r}"
        ) from None
    if not rates or any(rate <= 0 for rate in rates):
        raise argparse.ArgumentTypeError(f"rates must be positive, got {text!r}")
    return rates


def _api(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    from bench import api

    options = api.Options(
        people=args.people,
        load_people=args.load_people,
        requests=args.requests,
        concurrency=args.concurrency,
        phase_seconds=args.phase_seconds,
        rounds=args.rounds,
        rates=args.rates,
        rate_seconds=args.rate_seconds,
    )
    api.run(settings, options)
    return 0


def _postgres(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    from bench import postgres_socket

    postgres_socket.run(settings.postgres, args.queries, args.rounds)
    return 0
