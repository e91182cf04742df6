"""Exit codes and the one exception type the CLI turns into a message and an exit code.

Cron and wrapper scripts branch on the exit code, so every failure path maps to one documented number.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class ExitCode(enum.IntEnum):
    """The process exit codes: the one table of them, which docs/cli.md repeats (tests/unit/test_exit_code_table.py).

    Each code's meaning is the comment beside it. BAD_INPUT and PROTECTED_WINDOW leave every host unchanged.
    """

    OK = 0  # done
    FAILED = 1  # a step failed (a task, a build, a refused or failed cloud call); the message says which
    BAD_INPUT = 2  # invalid argument, setting or inventory; the message names the field and the allowed values
    UNREACHABLE = 3  # a host, the local Docker engine or the Compute API could not be reached
    NOT_READY = 4  # the gateway did not become ready in time
    INTERRUPTED = 5  # SIGINT, SIGTERM or SIGHUP; paper-up and paper-run take paper down first
    SESSION_TAKEN = 6  # the IBKR login is in use elsewhere: the gateway yielded its session or would not take it
    TWOFA_TIMEOUT = 7  # a live login waited for the 2FA approval until its deadline; live is stopped again
    LOGIN_FAILED = 8  # IBKR refused the user id or the password, or answered "too many failed login attempts"
    PROTECTED_WINDOW = 9  # down, restart or sign-in of a live gateway inside the protected window without --force
    ATTENTION = 10  # status --check warned: session expiring, live not ready or not signed in, a session taken


# The failure classes of playbook runs: a failing task's message begins "<CLASS>: ", and the class decides the exit
# code. Roles and modules use these words only (tests/unit/test_failure_classes.py checks every role's messages).
# When hosts fail differently, CODE_PRECEDENCE in ansible_run.py picks the code.
FAILURE_CLASSES = {
    "BAD INPUT": ExitCode.BAD_INPUT,
    "START FAILED": ExitCode.FAILED,
    "NOT READY": ExitCode.NOT_READY,
    "SESSION TAKEN": ExitCode.SESSION_TAKEN,
    "2FA NOT APPROVED": ExitCode.TWOFA_TIMEOUT,
    "LOGIN FAILED": ExitCode.LOGIN_FAILED,
    "PROTECTED WINDOW": ExitCode.PROTECTED_WINDOW,
}


class OpsError(Exception):
    """A failure the operator can act on: a message and the exit code that classifies it."""

    def __init__(self, message: str, code: ExitCode = ExitCode.FAILED) -> None:
        super().__init__(message)
        self.code = code


class BadInput(OpsError):
    """Invalid input, refused before anything changes on any host."""

    def __init__(self, field: str, problem: str, allowed: Iterable[str] | str | None = None) -> None:
        message = f"{field}: {problem}"
        if allowed is not None:
            shown = allowed if isinstance(allowed, str) else ", ".join(allowed)
            message += f" (allowed: {shown})"
        super().__init__(message, ExitCode.BAD_INPUT)
        self.field = field
