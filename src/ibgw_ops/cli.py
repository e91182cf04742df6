"""The ``ibgw-ops`` command line: parse, dispatch to one verb, turn failures into documented exit codes.

Verb modules import their heavy libraries lazily, so ``--help`` and light verbs start fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ibgw_ops import __version__, alerts
from ibgw_ops.commands import cloud, gateway, hosts, lab, live, paper, probe, shell, upgrade, vnc
from ibgw_ops.errors import ExitCode, OpsError

VERB_MODULES = (cloud, gateway, upgrade, live, paper, probe, hosts, shell, vnc, lab)


def build_parser() -> argparse.ArgumentParser:
    """The full parser: global options and one subcommand per verb."""
    parser = argparse.ArgumentParser(
        prog="ibgw-ops",
        description="Deploy and operate Interactive Brokers Gateway on a Google Cloud VM (or the local lab).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-i", "--inventory", metavar="PATH",
        help="Ansible inventory to act on (default: $IBGW_OPS_INVENTORY, else the lab's)",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", title="verbs")
    verbs.required = True
    for module in VERB_MODULES:
        module.register(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one verb; return its exit code (see ``ibgw_ops.errors.ExitCode``)."""
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        _verb_parser(parser, args.verb).error(f"unrecognized arguments: {' '.join(extras)}")
    try:
        alerts.webhook()
        return int(args.handler(args))
    except OpsError as exc:
        print(f"ibgw-ops: error: {exc}", file=sys.stderr)
        return int(exc.code)
    except KeyboardInterrupt:
        print("ibgw-ops: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)


def _verb_parser(parser: argparse.ArgumentParser, verb: str) -> argparse.ArgumentParser:
    """The verb's own parser, so an unknown option is reported with the verb's usage (its allowed options)."""
    verbs = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    chosen: argparse.ArgumentParser = verbs.choices[verb]
    return chosen
