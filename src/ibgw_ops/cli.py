"""The ``ibgw-ops`` command line: parse, dispatch to one verb, turn failures into documented exit codes.

Verb modules import their heavy libraries lazily, so ``--help`` and light verbs start fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ibgw_ops import __version__, alerts, environment
from ibgw_ops.commands import cloud, gateway, hosts, lab, live, paper, probe, shell, upgrade, vnc
from ibgw_ops.errors import ExitCode, OpsError

VERB_MODULES = (cloud, gateway, upgrade, live, paper, probe, hosts, shell, vnc, lab)
# Verbs that act on no inventory: -i is refused after them.
WITHOUT_INVENTORY = frozenset({"probe", "lab"})


def build_parser() -> argparse.ArgumentParser:
    """The full parser: global options and one subcommand per verb."""
    parser = argparse.ArgumentParser(
        prog="ibgw-ops",
        description="Deploy and operate Interactive Brokers Gateway on a Google Cloud VM (or the local lab).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_inventory(parser, None)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", title="verbs")
    verbs.required = True
    for module in VERB_MODULES:
        module.register(verbs)
    for name, verb in verbs.choices.items():
        if name not in WITHOUT_INVENTORY:
            # After the verb too, where people type it; SUPPRESS keeps a value given before the verb.
            _add_inventory(verb, argparse.SUPPRESS)
    return parser


def _add_inventory(parser: argparse.ArgumentParser, default: str | None) -> None:
    parser.add_argument("-i", "--inventory", metavar="PATH", default=default,
                        help="Ansible inventory to act on (default: $IBGW_OPS_INVENTORY, else the lab's)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one verb; return its exit code (see ``ibgw_ops.errors.ExitCode``)."""
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    _refuse_misplaced_options(parser, words)
    args, extras = parser.parse_known_args(words)
    if extras:
        _verb_parser(parser, args.verb).error(f"unrecognized arguments: {' '.join(extras)}")
    try:
        environment.check()
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
    chosen: argparse.ArgumentParser = _subparsers(parser).choices[verb]
    return chosen


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    return next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))


def _refuse_misplaced_options(parser: argparse.ArgumentParser, words: list[str]) -> None:
    """A verb's option typed before the verb: say where it goes (argparse would call the next word a bad verb)."""
    verbs = _subparsers(parser).choices
    for index, word in enumerate(words):
        if word in verbs or word == "--":
            return
        option = word.split("=", 1)[0]
        verb = next((later for later in words[index + 1:] if later in verbs), None)
        if word.startswith("-") and option not in parser._option_string_actions and verb:
            if option in verbs[verb]._option_string_actions:
                parser.error(f"{option} is an option of {verb}: it goes after the verb "
                             f"(allowed: ibgw-ops [-i PATH] {verb} ... {option} ...)")
            return
