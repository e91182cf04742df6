"""``ibgw-ops hosts``: which inventory the verbs act on, the hosts in it and their addresses."""

from __future__ import annotations

import argparse
import re
from typing import Any

from ibgw_ops import inventory
from ibgw_ops.errors import ExitCode

# The host variables shown: how Ansible reaches a host, where the gateway listens, where its traffic leaves from
# (the address IBKR and any allow-list see; written by provision, empty when Cloud NAT picks it).
SHOWN_VARS = ("ansible_host", "ibgw_internal_ip", "ibgw_egress_ip")
_VAR_LINE = re.compile(r"\{(\w+) = ")


def register(verbs: Any) -> None:
    """Add ``hosts``."""
    verbs.add_parser("hosts", help=show.__doc__, description=__doc__).set_defaults(handler=show)


def show(args: argparse.Namespace) -> int:
    """Show the inventory the verbs act on, its host graph and each host's addresses (egress IP included)."""
    path = inventory.resolve(args.inventory)
    print(f"inventory: {path}")
    graph = inventory.ansible_inventory(path, "--graph", "--vars")
    print("".join(line for line in graph.splitlines(keepends=True) if _shown(line)), end="")
    return int(ExitCode.OK)


def _shown(line: str) -> bool:
    """Groups, hosts and the address variables; other variables (settings, SSH options) would drown them."""
    variable = _VAR_LINE.search(line)
    return variable is None or variable[1] in SHOWN_VARS
