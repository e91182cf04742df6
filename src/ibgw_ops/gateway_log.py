"""Why a gateway stopped or never became ready, read from its last log lines (IBC's words).

Stdlib only: the role's modules use it on the VM (``roles/ib_gateway/module_utils/gateway_log.py`` links here).
The newest line that matches decides, so a session taken over at login and lost later reads as taken.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

# How many of the container's last log lines are read, and how many a failure message quotes.
TAIL = 40
QUOTED = 8
SESSION_TAKEN = "session_taken"
LOGIN_FAILED = "login_failed"
TWOFA_PENDING = "twofa_pending"
# Checked in this order on each line, newest line first.
PATTERNS = (
    (LOGIN_FAILED, re.compile(r"login failed|unrecognized username or password|invalid username or password",
                              re.IGNORECASE)),
    (SESSION_TAKEN, re.compile(r"existing session detected.*(exit|yield|end)|session was taken|yielding the session",
                               re.IGNORECASE)),
    (TWOFA_PENDING, re.compile(r"second factor authentication|two-factor|\b2fa\b", re.IGNORECASE)),
)


def classify(lines: Iterable[str]) -> str | None:
    """The reason the newest telling line gives, or None when no line tells."""
    for line in reversed(list(lines)):
        for reason, pattern in PATTERNS:
            if pattern.search(line):
                return reason
    return None


def read_container(run: Callable[[list[str]], tuple[int, str, str]], container: str) -> tuple[str | None, list[str]]:
    """What the container's last log lines tell, and the last few of them to quote.

    ``run`` runs a command the caller's way (AnsibleModule.run_command on the host).
    """
    rc, out, err = run(["docker", "logs", "--tail", str(TAIL), container])
    if rc != 0:
        return None, []
    lines = (out + err).splitlines()
    return classify(lines), lines[-QUOTED:]
