"""``ibgw-ops deploy | up | down | restart | status | logs``: configure the hosts and run their gateways.

Each verb applies one playbook from ``playbooks/`` with a target (all, a mode, or an instance); an SRE can run
the same playbook with plain ``ansible-playbook``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ibgw_ops import lifecycle, status_report
from ibgw_ops.alerts import Alert, emit
from ibgw_ops.commands.options import (
    MAX_LOG_LINES,
    add_force,
    add_restart,
    add_target,
    add_timeout,
    announce_ready,
    confirm,
    log_lines,
    open_runner,
    runner_options,
)
from ibgw_ops.errors import ExitCode


def register(verbs: Any) -> None:
    """Add the gateway verbs."""
    parent = runner_options()
    parser = verbs.add_parser("deploy", help=deploy.__doc__, description=deploy.__doc__, parents=[parent])
    parser.add_argument("--check", action="store_true", help="report what would change; change nothing")
    parser.set_defaults(handler=deploy)

    parser = verbs.add_parser("up", help=up.__doc__, description=up.__doc__, parents=[parent])
    add_target(parser, required=True)
    add_timeout(parser)
    parser.set_defaults(handler=up)

    parser = verbs.add_parser("down", help=down.__doc__, description=down.__doc__, parents=[parent])
    add_target(parser, required=True)
    add_force(parser)
    parser.set_defaults(handler=down)

    parser = verbs.add_parser("restart", help=restart.__doc__, description=restart.__doc__, parents=[parent])
    add_target(parser, required=True)
    add_restart(parser, "recreate the containers, live ones too (a live login then needs 2FA); asks first")
    parser.set_defaults(handler=restart)

    parser = verbs.add_parser("status", help=status.__doc__, description=status.__doc__, parents=[parent])
    add_target(parser, required=False)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--check", action="store_true",
                        help="exit 10 and print IBGW_ALERT lines when a warning needs the operator (cron)")
    parser.set_defaults(handler=status)

    parser = verbs.add_parser("logs", help=logs.__doc__, description=logs.__doc__, parents=[parent])
    add_target(parser, required=False)
    parser.add_argument("-n", "--lines", type=log_lines, default=None, metavar="N",
                        help=f"lines per gateway, 1-{MAX_LOG_LINES} (default: the inventory's "
                             "ib_gateway_log_lines, 100)")
    parser.add_argument("--previous", action="store_true",
                        help="the container that the last start replaced: its last lines and how it ended")
    parser.set_defaults(handler=logs)


def deploy(args: argparse.Namespace) -> int:
    """Configure the hosts (playbooks/site.yml): Docker and each gateway's files; never starts or stops one."""
    with open_runner(args) as runner:
        outcome = lifecycle.deploy(runner, check=args.check)
    for notice in outcome.events.payloads["ibgw_notice"]:
        print(f"{notice['host']}: {notice['message']}", file=sys.stderr)
    if runner.interactive:
        for row in sorted(outcome.events.payloads["ibgw_deployed"], key=lambda r: (r["host"], r["instance"])):
            print(status_report.deployed_line(row))
        print(f"deployed {len(outcome.events.hosts())} host(s); {outcome.events.changed()} change(s)"
              + (" would be made (check mode)" if args.check else ""))
    return int(ExitCode.OK)


def up(args: argparse.Namespace) -> int:
    """Start gateways and wait until the API handshake succeeds (exit 4 when not ready in time)."""
    with open_runner(args) as runner:
        ready = lifecycle.start(runner, args.target, args.timeout)
    announce_ready(runner, ready)
    return int(ExitCode.OK)


def down(args: argparse.Namespace) -> int:
    """Stop gateways tidily (IBC STOP, then the grace period); live ones in the protected window need --force."""
    with open_runner(args) as runner:
        lifecycle.stop(runner, args.target, force=args.force)
    return int(ExitCode.OK)


def restart(args: argparse.Namespace) -> int:
    """Restart and wait like up: live softly through IBC (no 2FA), paper by stop and start; --hard recreates live."""
    if args.hard:
        confirm(args, "a hard restart", f"A hard restart of '{args.target}' recreates its containers; a live "
                                        "login then needs the 2FA approval.", args.target)
    with open_runner(args) as runner:
        ready = lifecycle.restart(runner, args.target, args.timeout, hard=args.hard, force=args.force)
    announce_ready(runner, ready)
    return int(ExitCode.OK)


def status(args: argparse.Namespace) -> int:
    """Show each gateway's state and probe verdict, and live's session age, next weekly reset and 7-day limit."""
    with open_runner(args) as runner:
        rows = status_report.with_sessions(status_report.with_uptime(lifecycle.status(runner, args.target)))
    if args.json:
        print(status_report.render_json(rows))
    else:
        print("\n".join(filter(None, (status_report.render_table(rows), status_report.render_sessions(rows)))))
    warnings = [(row, kind, text) for row in rows for kind, text in row["warnings"]]
    if not args.check or not warnings:
        return int(ExitCode.OK)
    for row, kind, text in warnings:
        emit(Alert(kind, row["instance"], text, host=row["host"]), runner.inventory)
    return int(ExitCode.ATTENTION)


def logs(args: argparse.Namespace) -> int:
    """Show the last log lines of each gateway's container (--previous: of the container its last start replaced)."""
    with open_runner(args) as runner:
        found = lifecycle.logs(runner, args.target, args.lines, previous=args.previous)
    for entry in sorted(found, key=lambda e: (e["host"], e["instance"])):
        if args.previous:
            print(f"== {entry['host']} {entry['instance']}: {status_report.previous_line(entry['previous'])}")
            print("\n".join(entry["lines"]) if entry["lines"] else "(no lines kept)")
        else:
            print(f"== {entry['host']} {entry['instance']}")
            print("\n".join(entry["lines"]) if entry["lines"] else "(no container)")
    return int(ExitCode.OK)
