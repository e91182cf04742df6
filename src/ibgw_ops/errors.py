"""Exit codes and the one exception type the CLI turns into a message and an exit code.

Cron and wrapper scripts branch on the exit code, so every failure path maps to one documented number.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class ExitCode(enum.IntEnum):
    """Documented process exit codes (README, "Exit codes")."""

    OK = 0
    FAILED = 1
    BAD_INPUT = 2
    UNREACHABLE = 3
    NOT_READY = 4
    INTERRUPTED = 5
    SESSION_TAKEN = 6
    TWOFA_TIMEOUT = 7
    LOGIN_FAILED = 8
    PROTECTED_WINDOW = 9
    ATTENTION = 10


# The failure classes of playbook runs: a failing task's message begins "<CLASS>: ", and the class decides the exit
# code. Roles and modules use these words only (tests/unit/test_failure_classes.py checks every role's messages).
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
