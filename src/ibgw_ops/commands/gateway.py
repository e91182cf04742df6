"""``ibgw-ops deploy | up | down | restart | status | logs``: configure the hosts and run their gateways.

Each verb applies one playbook from ``playbooks/`` with a target (all, a mode, or an instance); an SRE can run
the same playbook with plain ``ansible-playbook``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ibgw_ops import lifecycle, status_report
from ibgw_ops.commands.options import (
    add_target,
    add_timeout,
    announce_ready,
    open_runner,
    positive_int,
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
    parser.set_defaults(handler=down)

    parser = verbs.add_parser("restart", help=restart.__doc__, description=restart.__doc__, parents=[parent])
    add_target(parser, required=True)
    add_timeout(parser)
    parser.set_defaults(handler=restart)

    parser = verbs.add_parser("status", help=status.__doc__, description=status.__doc__, parents=[parent])
    add_target(parser, required=False)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.set_defaults(handler=status)

    parser = verbs.add_parser("logs", help=logs.__doc__, description=logs.__doc__, parents=[parent])
    add_target(parser, required=False)
    parser.add_argument("-n", "--lines", type=positive_int, default=None, metavar="N",
                        help="lines per gateway (default: the inventory's ib_gateway_log_lines, 100)")
    parser.set_defaults(handler=logs)


def deploy(args: argparse.Namespace) -> int:
    """Configure the hosts (playbooks/site.yml): Docker and each gateway's files; never starts or stops one."""
    with open_runner(args) as runner:
        outcome = lifecycle.deploy(runner, check=args.check)
    for notice in outcome.events.payloads["ibgw_notice"]:
        print(f"{notice['host']}: {notice['message']}", file=sys.stderr)
    if runner.interactive:
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
    """Stop gateways tidily (IBC STOP, then the grace period) and check that they stopped."""
    with open_runner(args) as runner:
        lifecycle.stop(runner, args.target)
    return int(ExitCode.OK)


def restart(args: argparse.Namespace) -> int:
    """Stop and start gateways again, applying a pending configuration; waits like up."""
    with open_runner(args) as runner:
        ready = lifecycle.restart(runner, args.target, args.timeout)
    announce_ready(runner, ready)
    return int(ExitCode.OK)


def status(args: argparse.Namespace) -> int:
    """Show each gateway's container state, uptime, image, probe verdict and accounts."""
    with open_runner(args) as runner:
        rows = status_report.with_uptime(lifecycle.status(runner, args.target))
    print(status_report.render_json(rows) if args.json else status_report.render_table(rows))
    return int(ExitCode.OK)


def logs(args: argparse.Namespace) -> int:
    """Show the last log lines of each gateway's container."""
    with open_runner(args) as runner:
        found = lifecycle.logs(runner, args.target, args.lines)
    for entry in sorted(found, key=lambda e: (e["host"], e["instance"])):
        print(f"== {entry['host']} {entry['instance']}")
        print("\n".join(entry["lines"]) if entry["lines"] else "(no container)")
    return int(ExitCode.OK)
