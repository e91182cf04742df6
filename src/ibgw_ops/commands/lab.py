"""``ibgw-ops lab``: the local Debian 13 VM every test deploys to."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ibgw_ops.errors import ExitCode


def register(verbs: Any) -> None:
    """Add ``lab up | down | status | ssh``."""
    lab = verbs.add_parser("lab", help="Create, inspect, enter or remove the local lab VM",
                           description=__doc__)
    actions = lab.add_subparsers(dest="lab_action", metavar="ACTION", title="actions")
    actions.required = True
    actions.add_parser("up", help=up.__doc__).set_defaults(handler=up)
    actions.add_parser("down", help=down.__doc__).set_defaults(handler=down)
    status_parser = actions.add_parser("status", help=status.__doc__)
    status_parser.add_argument("--json", action="store_true", help="machine-readable output")
    status_parser.set_defaults(handler=status)
    ssh_parser = actions.add_parser("ssh", help=ssh.__doc__)
    ssh_parser.add_argument("command", nargs=argparse.REMAINDER, help="command to run instead of a shell")
    ssh_parser.set_defaults(handler=ssh)


def _progress(message: str) -> None:
    print(f"lab: {message}", file=sys.stderr, flush=True)


def up(args: argparse.Namespace) -> int:
    """Create or start the lab VM and write its inventory (idempotent; seconds when cached)."""
    from ibgw_ops.lab import vm  # noqa: PLC0415

    result = vm.up(_progress)
    print(f"lab VM {vm.lab_name()} running at {result.address}; inventory {result.inventory}")
    return int(ExitCode.OK)


def down(args: argparse.Namespace) -> int:
    """Remove the lab VM with its network, disk and files (the cached base images stay)."""
    from ibgw_ops.lab import vm  # noqa: PLC0415

    vm.down(_progress)
    return int(ExitCode.OK)


def status(args: argparse.Namespace) -> int:
    """Show the lab VM's state, address and inventory."""
    from ibgw_ops.lab import vm  # noqa: PLC0415

    result = vm.status()
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        for key, value in result.as_dict().items():
            print(f"{key:<10} {value if value is not None else '-'}")
    return int(ExitCode.OK if result.state == "running" else ExitCode.UNREACHABLE)


def ssh(args: argparse.Namespace) -> int:
    """Log in to the lab VM as root over SSH (or run a command there)."""
    from ibgw_ops.lab import vm  # noqa: PLC0415

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    argv = vm.ssh_argv(command)
    sys.stdout.flush()
    os.execvp(argv[0], argv)  # noqa: S606 - replaces this process with ssh, by design
