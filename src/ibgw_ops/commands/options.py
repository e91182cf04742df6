"""Arguments the playbook verbs share, and the runner they open from them."""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ibgw_ops import inventory, status_report, vault
from ibgw_ops.ansible_run import PlaybookRunner
from ibgw_ops.errors import BadInput, ExitCode, OpsError
from ibgw_ops.interrupts import Interrupts

TARGET_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


def runner_options() -> argparse.ArgumentParser:
    """Parent parser for every verb that runs a playbook."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("ansible")
    group.add_argument("-v", "--verbose", action="count", default=0,
                       help="show Ansible's own output (-vvv for connection details); secrets stay redacted")
    group.add_argument("--limit", metavar="HOSTS", help="only these inventory hosts (Ansible's --limit pattern)")
    group.add_argument("--ask-vault-pass", action="store_true",
                       help="prompt for the vault password (or set ANSIBLE_VAULT_PASSWORD_FILE)")
    return parent


def target_type(text: str) -> str:
    """``all``, a mode, or an instance name (the role checks that it matches an instance)."""
    if not TARGET_PATTERN.match(text):
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a target (allowed: all, live, paper, or an instance name: lowercase letters, "
            "digits and dashes, starting with a letter)")
    return text


def positive_int(text: str) -> int:
    """A whole number of at least 1 (seconds, lines)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of at least 1")
    return int(text)


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
    parser.add_argument("--timeout", type=positive_int, metavar="SECONDS",
                        help="wait at most this long for the gateway to become ready (default: the inventory's "
                             "ib_gateway_ready_timeout, 300)")


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
    vault_password = None
    if args.ask_vault_pass:
        vault_password = _ask_vault_password()
    else:
        _check_vault_password_file()
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
    named = os.environ.get(vault.FILE_ENV, "")
    if named and not Path(named).is_file():
        raise BadInput(vault.FILE_ENV, f"{named} is not a file", vault.HOW)
