"""``ibgw-ops hosts``: which inventory the verbs act on and the hosts in it."""

from __future__ import annotations

import argparse
import subprocess
from typing import Any

from ibgw_ops import inventory
from ibgw_ops.errors import ExitCode, OpsError
from ibgw_ops.paths import ansible_command


def register(verbs: Any) -> None:
    """Add ``hosts``."""
    verbs.add_parser("hosts", help=show.__doc__, description=__doc__).set_defaults(handler=show)


def show(args: argparse.Namespace) -> int:
    """Show the inventory the verbs act on and its host graph."""
    path = inventory.resolve(args.inventory)
    print(f"inventory: {path}")
    result = subprocess.run([ansible_command("ansible-inventory"), "-i", str(path), "--graph"],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise OpsError(f"ansible-inventory could not read {path}: {result.stderr.strip()}", ExitCode.BAD_INPUT)
    print(result.stdout, end="")
    return int(ExitCode.OK)
