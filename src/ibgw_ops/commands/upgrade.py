"""``ibgw-ops upgrade | rollback``: a new gateway image pulled ahead and set in the inventory, or the old one back.

Both check first that the inventory line naming the image can be edited safely (exit 2, nothing changed, when it
cannot), then run their playbook (a failing pull: exit 1, nothing changed), then edit the inventory. Paper picks
the image up at its next start, live at its next ``live-signin``; ``--now`` restarts them at once (live only with
``--hard``: a recreated live gateway needs the 2FA approval).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from ibgw_ops import image_setting, inventory, lifecycle
from ibgw_ops.ansible_run import PlaybookRunner
from ibgw_ops.commands.options import (
    add_restart,
    add_target,
    announce_ready,
    confirm,
    open_runner,
    runner_options,
)
from ibgw_ops.errors import BadInput, ExitCode

Install = Callable[[PlaybookRunner], list[dict[str, Any]]]


def register(verbs: Any) -> None:
    """Add the upgrade verbs."""
    parent = runner_options()
    parser = verbs.add_parser("upgrade", help=upgrade.__doc__, description=upgrade.__doc__, parents=[parent])
    add_target(parser, required=False)
    parser.add_argument("--image", required=True, metavar="REF", type=image_reference,
                        help="the new reference, repository:10.50.1d or repository:tag@sha256:... (not latest/stable)")
    _add_now(parser)
    parser.set_defaults(handler=upgrade)

    parser = verbs.add_parser("rollback", help=rollback.__doc__, description=rollback.__doc__, parents=[parent])
    add_target(parser, required=False)
    _add_now(parser)
    parser.set_defaults(handler=rollback)


def image_reference(text: str) -> str:
    """A reference without blanks; its form (pinned, no latest/stable) is the role's to check."""
    if not text or any(char.isspace() for char in text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an image reference (allowed: repository:10.50.1d or "
                                         "repository:tag@sha256:...)")
    return text


def _add_now(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--now", action="store_true",
                        help="restart the gateways at once instead of at their next start (live needs --hard)")
    add_restart(parser, "with --now: recreate live gateways too (a live login then needs 2FA); asks first")


def upgrade(args: argparse.Namespace) -> int:
    """Pull or load a new image now, record the running one as the rollback point, set it in the inventory."""
    return _install(args, args.image, lambda runner: lifecycle.upgrade(runner, args.target, args.image))


def rollback(args: argparse.Namespace) -> int:
    """Go back to the image each gateway ran before its last upgrade (by its recorded id), in the inventory too."""
    return _install(args, "recorded in /opt/ibgw/<instance>/rollback-image",
                    lambda runner: lifecycle.rollback(runner, args.target))


def _install(args: argparse.Namespace, shown: str, install: Install) -> int:
    """Check the inventory edit, run the playbook, edit the inventory, then restart with ``--now``."""
    if args.limit:
        # The line that sets the image usually serves every host: editing it for some would change the others.
        raise BadInput("--limit", "upgrade and rollback set the image in the inventory for every gateway host",
                       "no --limit; for some hosts only, run the playbook with --limit and set their host_vars")
    path = inventory.resolve(args.inventory)
    plan = image_setting.plan(path, inventory.host_vars(path), args.target, shown)
    if args.hard and not args.now:
        raise BadInput("--hard", "only applies with --now", "--now --hard")
    if args.now and "live" in plan.modes and not args.hard:
        raise BadInput("--now", f"'{args.target}' includes live gateways, which a restart recreates (a 2FA login)",
                       "--now --hard (asks first), or leave it to the next live-signin")
    if args.hard:
        confirm(args, "a hard restart", f"Restarting '{args.target}' on the new image recreates its live "
                                        "containers; the live login then needs the 2FA approval.", args.target)
    with open_runner(args, path) as runner:
        installed = install(runner)
        for line in plan.apply({row["instance"]: row["image"] for row in installed}):
            print(f"inventory: {line}", file=sys.stderr)
        if args.now:
            announce_ready(runner, lifecycle.restart(runner, args.target, args.timeout, hard=args.hard,
                                                     force=args.force))
            return int(ExitCode.OK)
    for row in sorted(installed, key=lambda r: (r["host"], r["instance"])):
        print(f"{row['instance']} on {row['host']}: {row['image']} is on the host; it runs from the gateway's next "
              "start (paper-up, or live-signin for live)", file=sys.stderr)
    return int(ExitCode.OK)
