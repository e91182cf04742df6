"""Arguments the playbook verbs share, and the runner they open from them."""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ibgw_ops import environment, inventory, inventory_files, status_report, vault
from ibgw_ops.ansible_run import PlaybookRunner
from ibgw_ops.errors import BadInput, ExitCode, OpsError
from ibgw_ops.interrupts import Interrupts

TARGET_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
MAX_TIMEOUT = 86400
LIMIT_ALLOWED = "a host name, group or Ansible pattern over the hosts of group ibgw_gateways"
MAX_LOG_LINES = 100000
MAX_CLIENT_ID = 2**31 - 1


def runner_options() -> argparse.ArgumentParser:
    """Parent parser for every verb that runs a playbook."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("ansible")
    group.add_argument("-v", "--verbose", action="count", default=0,
                       help="show Ansible's own output (-vvv for connection details); secrets stay redacted")
    group.add_argument("--limit", metavar="HOSTS", type=limit_pattern,
                       help="only these inventory hosts (Ansible's --limit pattern)")
    group.add_argument("--ask-vault-pass", action="store_true",
                       help="prompt for the vault password (or set ANSIBLE_VAULT_PASSWORD_FILE)")
    return parent


def limit_pattern(text: str) -> str:
    """Ansible's ``--limit`` pattern; an empty one would limit nothing and act on every host."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is empty (allowed: {LIMIT_ALLOWED})")
    return text


def target_type(text: str) -> str:
    """``all``, a mode, or an instance name (the role checks that it matches an instance)."""
    if not TARGET_PATTERN.match(text):
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a target (allowed: all, live, paper, or an instance name: lowercase letters, "
            "digits and dashes, starting with a letter)")
    return text


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """The argparse type of a whole number from ``low`` to ``high``: every number the CLI takes has a range."""
    def parse(text: str) -> int:
        if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number from {low} to {high}")
        return int(text)
    return parse


# A day: longer than any start or 2FA sign-in needs (a bigger one would overflow the deadline's clock).
seconds = whole_number(1, MAX_TIMEOUT)
log_lines = whole_number(1, MAX_LOG_LINES)
# The TWS API's client ids are 32-bit signed; ibgw-ops takes the non-negative ones.
client_id = whole_number(0, MAX_CLIENT_ID)


def add_target(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """The TARGET positional: required where acting on every gateway by accident would hurt."""
    if required:
        parser.add_argument("target", type=target_type, metavar="TARGET",
                            help="all, live, paper, or an instance name")
    else:
        parser.add_argument("target", type=target_type, metavar="TARGET", nargs="?", default="all",
                            help="all (default), live, paper, or an instance name")


def add_timeout(parser: argparse.ArgumentParser) -> None:
    """How long a start waits for the handshake."""
    parser.add_argument("--timeout", type=seconds, metavar="SECONDS",
                        help=f"wait at most this long for the gateway to become ready, 1-{MAX_TIMEOUT} (default: "
                             "the inventory's ib_gateway_ready_timeout, 300)")


def add_force(parser: argparse.ArgumentParser) -> None:
    """``--force``: act on live gateways inside the protected window."""
    parser.add_argument("--force", action="store_true",
                        help="act on live gateways even inside the protected window (ib_gateway_protected_window)")


def add_restart(parser: argparse.ArgumentParser, hard_help: str) -> None:
    """A restart's options: ``--timeout``, ``--hard`` (asks first, or ``--yes``) and ``--force``."""
    add_timeout(parser)
    parser.add_argument("--hard", action="store_true", help=hard_help)
    parser.add_argument("--yes", action="store_true", help="do not ask before a hard restart")
    add_force(parser)


def confirm(args: argparse.Namespace, what: str, prompt: str, answer: str) -> None:
    """Go on with ``--yes``, or when the operator types ``answer`` at a terminal; otherwise exit 2, nothing done."""
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise BadInput("--yes", f"{what} asks for confirmation and no terminal can answer", "--yes")
    if input(f"{prompt} Type '{answer}' to confirm: ").strip() != answer:
        raise OpsError(f"not confirmed; {what} not done, nothing changed", ExitCode.BAD_INPUT)


def announce_ready(runner: PlaybookRunner, ready: list[dict[str, Any]]) -> None:
    """On a terminal, one line per gateway that became ready; cron hears nothing on success."""
    if runner.interactive:
        print("\n".join(status_report.ready_line(row) for row in ready))


@contextmanager
def open_runner(args: argparse.Namespace, path: Path | None = None) -> Iterator[PlaybookRunner]:
    """A runner for ``path`` (default: the chosen inventory); signals become a cancel request while it runs."""
    path = path or inventory.resolve(args.inventory)
    inventory_files.check_key_files(path)
    _check_vault_password_file()
    vault_password = _ask_vault_password() if args.ask_vault_pass else None
    with Interrupts() as interrupts:
        yield PlaybookRunner(path, interrupts, verbosity=args.verbose, limit=args.limit,
                             vault_password=vault_password)


def _ask_vault_password() -> str:
    """Prompt at a terminal; cron and pipes have none, so they are pointed at the password file instead."""
    if not sys.stdin.isatty():
        raise BadInput("--ask-vault-pass", "no terminal to ask for the vault password",
                       f"run at a terminal, or set {vault.FILE_ENV} to a file holding the password")
    return getpass.getpass("Vault password: ")


def _check_vault_password_file() -> None:
    """Ansible would stop on a missing password file with a bare exit 1; name it instead, before any run."""
    named = environment.value(vault.FILE_ENV)
    if named and not Path(named).is_file():
        raise BadInput(vault.FILE_ENV, f"{named} is not a file", vault.HOW)
