"""``ibgw-ops ssh [HOST] [-- CMD]``: a shell on a gateway VM, reached exactly as Ansible reaches it.

The ssh options come from the inventory (IAP ProxyCommand or the external IP, key, known_hosts), so the operator
never assembles them by hand and the host key is checked the same way. Nothing secret is ever in the argv.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from ibgw_ops import inventory, inventory_files
from ibgw_ops.errors import BadInput


def register(verbs: Any) -> None:
    """Add ``ssh``."""
    parser = verbs.add_parser("ssh", help=ssh.__doc__, description=__doc__,
                              usage="%(prog)s [HOST] [-- CMD [ARGS...]]")
    parser.add_argument("words", nargs=argparse.REMAINDER, metavar="HOST -- CMD",
                        help="the inventory host (optional when there is one) and the command to run there")
    parser.set_defaults(handler=ssh)


def ssh(args: argparse.Namespace) -> int:
    """Open a shell on a gateway VM (or run CMD there) as the inventory says to reach it; exit as ssh did."""
    name, command = split_words(args.words)
    path = inventory.resolve(args.inventory)
    inventory_files.check_key_files(path)
    hosts = inventory.host_vars(path)
    return subprocess.run(ssh_argv(pick(hosts, name), command), check=False).returncode


def split_words(words: list[str]) -> tuple[str | None, list[str]]:
    """``[HOST] [-- CMD...]`` into the host (None: the only one) and the command (empty: a login shell)."""
    if words[:1] == ["--"]:
        return None, words[1:]
    if not words:
        return None, []
    rest = words[1:]
    return words[0], rest[1:] if rest[:1] == ["--"] else rest


def pick(hosts: Mapping[str, dict[str, Any]], name: str | None) -> dict[str, Any]:
    """The named host's variables; without a name, the only host's."""
    if not hosts:
        raise BadInput("inventory", f"no host in group {inventory.GROUP}", "an inventory like the lab's")
    if name is None and len(hosts) == 1:
        return next(iter(hosts.values()))
    if name is not None and name in hosts:
        return hosts[name]
    problem = "several hosts: say which" if name is None else f"'{name}' is not a host of {inventory.GROUP}"
    raise BadInput("HOST", problem, sorted(hosts))


def ssh_argv(hostvars: Mapping[str, Any], command: list[str], options: Sequence[str] = ()) -> list[str]:
    """The ssh command line Ansible would use for this host, with ``command`` to run there (and more ``options``)."""
    argv = ["ssh", *shlex.split(str(hostvars.get("ansible_ssh_common_args", ""))), *options]
    if hostvars.get("ansible_port"):
        argv += ["-p", str(hostvars["ansible_port"])]
    if hostvars.get("ansible_ssh_private_key_file"):
        argv += ["-i", str(hostvars["ansible_ssh_private_key_file"])]
    user = hostvars.get("ansible_user")
    target = str(hostvars.get("ansible_host", ""))
    # "--" ends ssh's options, so neither the host nor CMD can be read as one; ssh joins CMD for the remote shell.
    return [*argv, "--", f"{user}@{target}" if user else target, *command]
