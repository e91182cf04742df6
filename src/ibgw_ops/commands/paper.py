"""``ibgw-ops paper-up | paper-down | paper-run``: the paper gateway around a pipeline, made for cron.

Paper shares its IBKR login with the human trader, so every path that does not end in a ready gateway ends with
paper stopped: a timeout (the role stops it), an interrupted start, and the end of ``paper-run`` whatever
happened to its command.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import Any

from ibgw_ops import lifecycle
from ibgw_ops.ansible_run import PlaybookRunner
from ibgw_ops.commands.options import add_timeout, announce_ready, client_id, open_runner, runner_options
from ibgw_ops.errors import BadInput, ExitCode, OpsError
from ibgw_ops.interrupts import Interrupts

DEFAULT_CLIENT_ID = 1
# After a forwarded signal the command gets this long to exit before it is killed.
KILL_GRACE_SECONDS = 30.0
# Shell conventions for a command that cannot be run.
NOT_EXECUTABLE, NOT_FOUND = 126, 127
# The lowest exit code that is none of ibgw-ops' own: --command-failed-code starts here, so it cannot collide.
FIRST_FREE_CODE = max(ExitCode) + 1


def register(verbs: Any) -> None:
    """Add the paper verbs."""
    parent = runner_options()
    parser = verbs.add_parser("paper-up", help=paper_up.__doc__, description=paper_up.__doc__, parents=[parent])
    add_timeout(parser)
    parser.set_defaults(handler=paper_up)

    parser = verbs.add_parser("paper-down", help=paper_down.__doc__, description=paper_down.__doc__,
                              parents=[parent])
    parser.set_defaults(handler=paper_down)

    parser = verbs.add_parser("paper-run", help=paper_run.__doc__, description=paper_run.__doc__,
                              parents=[parent], usage="%(prog)s [options] -- CMD [ARGS...]")
    add_timeout(parser)
    parser.add_argument("--client-id", type=client_id, default=DEFAULT_CLIENT_ID, metavar="N",
                        help="API client id handed to CMD as IBGW_CLIENT_ID (default %(default)s)")
    parser.add_argument("--command-failed-code", type=command_failed_code, metavar="CODE",
                        help=f"exit CODE ({FIRST_FREE_CODE}-255, none of ibgw-ops' own codes) whenever CMD fails, "
                             "so cron tells the command's failures from paper-run's own (default: CMD's code)")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD", help="the command to run")
    parser.set_defaults(handler=paper_run)


def command_failed_code(text: str) -> int:
    """An exit code that no failure of ibgw-ops itself uses."""
    if not text.isdigit() or not FIRST_FREE_CODE <= int(text) <= 255:
        raise argparse.ArgumentTypeError(f"'{text}' is not an exit code of a failed command (allowed: "
                                         f"{FIRST_FREE_CODE}-255; 0-{FIRST_FREE_CODE - 1} are ibgw-ops' own)")
    return int(text)


def paper_up(args: argparse.Namespace) -> int:
    """Start the paper gateway and wait until an API client would succeed (silent on success in cron)."""
    with open_runner(args) as runner:
        ready = _bring_paper_up(runner, args.timeout)
    announce_ready(runner, ready)
    return int(ExitCode.OK)


def paper_down(args: argparse.Namespace) -> int:
    """Stop the paper gateway tidily so the trader can log in; checks that it stopped."""
    with open_runner(args) as runner:
        lifecycle.stop(runner, lifecycle.PAPER, cancellable=False)
    return int(ExitCode.OK)


def paper_run(args: argparse.Namespace) -> int:
    """Bring paper up, run CMD with IBGW_API_HOST/PORT/CLIENT_ID set, always bring paper down; exit as CMD did."""
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise BadInput("CMD", "no command given", "paper-run [options] -- CMD [ARGS...]")
    with open_runner(args) as runner:
        # The role refuses the probe's client id (ib_gateway_probe_client_id, which the inventory may set).
        ready = _bring_paper_up(runner, args.timeout, args.client_id)
        try:
            code = _run_command(command, _hint_env(ready, args.client_id), runner.interrupts)
        finally:
            _take_paper_down_after(runner)
    if runner.interrupts.requested():
        print(f"ibgw-ops: paper-run interrupted by {runner.interrupts.describe()}; paper is down",
              file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    if code and args.command_failed_code:
        print(f"ibgw-ops: paper-run: {command[0]} exited with {code}; exit {args.command_failed_code} "
              "(--command-failed-code)", file=sys.stderr)
        return int(args.command_failed_code)
    return code


def _bring_paper_up(runner: PlaybookRunner, timeout: int | None,
                    client_id: int | None = None) -> list[dict[str, Any]]:
    """Start paper (for a pipeline using ``client_id``); an interrupted start takes paper down again."""
    try:
        return lifecycle.start(runner, lifecycle.PAPER, timeout, client_id=client_id)
    except OpsError as exc:
        if exc.code != ExitCode.INTERRUPTED:
            raise
        lifecycle.stop(runner, lifecycle.PAPER, cancellable=False)
        raise OpsError(f"paper start interrupted by {runner.interrupts.describe()}; paper is down",
                       ExitCode.INTERRUPTED) from exc


def _take_paper_down_after(runner: PlaybookRunner) -> None:
    try:
        lifecycle.stop(runner, lifecycle.PAPER, cancellable=False)
    except OpsError as exc:
        raise OpsError(f"the command finished, but taking paper down failed: {exc}", exc.code) from exc


def _hint_env(ready: list[dict[str, Any]], client_id: int) -> dict[str, str]:
    """The caller's environment plus where the (first) ready paper gateway listens."""
    first = min(ready, key=lambda row: (row["host"], row["instance"]))
    return {
        **os.environ,
        "IBGW_API_HOST": str(first["api_host"]),
        "IBGW_API_PORT": str(first["api_port"]),
        "IBGW_CLIENT_ID": str(client_id),
        "IBGW_INSTANCE": str(first["instance"]),
        "IBGW_ACCOUNTS": ",".join(first.get("accounts") or []),
    }


def _run_command(command: list[str], env: dict[str, str], interrupts: Interrupts) -> int:
    """Run CMD in its own process group; pass interrupting signals on; kill it if it outstays the grace."""
    if interrupts.requested():
        return int(ExitCode.INTERRUPTED)
    try:
        process = subprocess.Popen(command, env=env, process_group=0)
    except FileNotFoundError:
        print(f"ibgw-ops: paper-run: {command[0]}: command not found", file=sys.stderr)
        return NOT_FOUND
    except OSError as exc:
        # Not executable, a folder, or a file the kernel cannot run (Exec format error): the shell's 126.
        print(f"ibgw-ops: paper-run: {command[0]}: cannot be run as a program ({exc.strerror})", file=sys.stderr)
        return NOT_EXECUTABLE
    interrupts.listen(lambda signum: _signal_group(process, signum))
    if interrupts.requested():
        _signal_group(process, signal.SIGTERM)
    deadline: float | None = None
    while True:
        try:
            returncode = process.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            if interrupts.requested():
                deadline = deadline or time.monotonic() + KILL_GRACE_SECONDS
                if time.monotonic() > deadline:
                    _signal_group(process, signal.SIGKILL)
    return returncode if returncode >= 0 else 128 - returncode


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)
