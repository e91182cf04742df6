"""``ibgw-ops live-signin``: the Sunday procedure for the live gateway (the one sign-in of the week with 2FA).

IBKR resets session tokens every Sunday at 01:00 US/Eastern; the first login after that needs the 2FA approval on
IBKR Mobile. The gateway then runs the week, restarting daily without 2FA.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ibgw_ops import inventory, inventory_files, lifecycle, status_report
from ibgw_ops.alerts import Alert, emit
from ibgw_ops.commands.options import add_force, announce_ready, open_runner, runner_options, seconds, target_type
from ibgw_ops.errors import BadInput
from ibgw_ops.image_setting import DEFAULT_INSTANCES
from ibgw_ops.on_host import session_clock

# IBKR Mobile's push stays valid about 3 minutes; the gateway needs up to a minute or two to show its login.
DEFAULT_SIGNIN_TIMEOUT = 300


def register(verbs: Any) -> None:
    """Add the live verbs."""
    parser = verbs.add_parser("live-signin", help=live_signin.__doc__, description=live_signin.__doc__,
                              parents=[runner_options()])
    parser.add_argument("target", type=target_type, metavar="TARGET", nargs="?", default="live",
                        help="live (default) or the name of a live instance")
    parser.add_argument("--timeout", type=seconds, metavar="SECONDS", default=DEFAULT_SIGNIN_TIMEOUT,
                        help="how long to wait for the 2FA approval and the login (default %(default)s)")
    add_force(parser)
    parser.set_defaults(handler=live_signin)


def live_signin(args: argparse.Namespace) -> int:
    """Sunday sign-in: stop live, start it, wait for the 2FA approval until a deadline (exit 7), record the time."""
    path = inventory.resolve(args.inventory)
    _refuse_paper(args.target, path)
    with open_runner(args, path) as runner:
        lifecycle.stop(runner, args.target, force=args.force)
        deadline = datetime.now(UTC) + timedelta(seconds=args.timeout)
        shown = deadline.astimezone().strftime("%H:%M:%S %Z")
        print(f"live-signin: {args.target} stopped; starting it now. Approve the IBKR Mobile notification as soon "
              f"as it arrives, by {shown} at the latest.", file=sys.stderr, flush=True)
        emit(Alert("2fa_needed", args.target, f"live-signin started: approve the IBKR Mobile notification by {shown}"),
             runner.inventory)
        ready = lifecycle.start(runner, args.target, args.timeout)
    announce_ready(runner, ready)
    now = datetime.now(UTC)
    print(f"live-signin: signed in at {status_report.shown(now)}; the session lasts until "
          f"{status_report.shown(session_clock.good_until(now))} (IBKR's weekly reset)", file=sys.stderr)
    return 0


def _refuse_paper(target: str, path: Path) -> None:
    """A target that selects a paper instance is refused before anything stops: paper has no 2FA sign-in.

    The instances' modes come from the inventory's text (the role's defaults when it sets none); a target it does
    not name goes on to the role, which refuses what matches no instance.
    """
    modes = inventory_files.instance_modes(path) or {str(i["name"]): str(i["mode"]) for i in DEFAULT_INSTANCES}
    paper = sorted(name for name, mode in modes.items() if target in ("all", name, mode) and mode != "live")
    if target == lifecycle.PAPER or paper:
        live = sorted(name for name, mode in modes.items() if mode == "live")
        raise BadInput("TARGET", f"'{target}' selects paper instance(s) {', '.join(paper) or target}: live-signin is "
                                 "the weekly 2FA sign-in of live gateways; paper needs none (start it with paper-up "
                                 "or paper-run, stop it with paper-down)", list(dict.fromkeys(["live", *live])))
