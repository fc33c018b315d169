"""`exchange demo`: the whole exchange on generated data (what `make demo` runs)."""

from __future__ import annotations

import argparse
from typing import Any

from exchange.settings import ExchangeSettings


def register(commands: Any) -> None:
    """Add `exchange demo`."""
    demo = commands.add_parser("demo", help="run the whole exchange on generated departments")
    demo.add_argument("--people", type=int, default=20_000, help="how many people the departments know")
    demo.add_argument("--seed", type=int, default=2026)
    demo.add_argument("--no-wait", action="store_true", help="stop everything at the end instead of waiting")
    demo.add_argument("--timeout", type=float, default=1800.0, help="seconds each loading phase may take")
    demo.set_defaults(run=_demo)


def _demo(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    from exchange import demo
    from exchange.demo_api import ask_api

    options = demo.DemoOptions(
        people=args.people, seed=args.seed, wait=not args.no_wait, timeout_seconds=args.timeout
    )
    return demo.run(settings, options, ask_api)
