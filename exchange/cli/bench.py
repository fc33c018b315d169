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
    connect.set_defaults(run=_connect)


def _connect(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    from bench import connect

    connect.run(settings, args.records, args.departments)
    return 0
