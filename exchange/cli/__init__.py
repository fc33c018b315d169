"""`exchange`: the one command. Each command group lives in its own module and registers itself here."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from exchange.cli import api, bench, connect, demo, facts, foundation, pipeline, sink, top
from exchange.cli.signals import interrupt_on_sigterm
from exchange.exceptions import ExchangeError
from exchange.settings import load_settings

# Each module contributes `register(subparsers)`; a parser's `run(settings, args) -> int` does the work.
_GROUPS = (foundation, connect, pipeline, facts, sink, bench, top, api, demo)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command group registered."""
    parser = argparse.ArgumentParser(prog="exchange", description="数据跑腿 Exchange")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in _GROUPS:
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `exchange` console script."""
    args = build_parser().parse_args(argv)
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # kafka-python and aiokafka narrate every connection at INFO; operators need their warnings only.
    for chatty in ("kafka", "aiokafka"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
    interrupt_on_sigterm()
    try:
        code: int = args.run(settings, args)
    except ExchangeError as exc:
        print(f"exchange {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
