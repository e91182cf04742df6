"""Every login a gateway made, with its kind and what started it: the session calendar's record of what happened.

A login is ``full`` (IBC drove the login dialog: a live one sent a 2FA push) or ``resumed`` (a restart that reused the
session's token through the ``autorestart`` file, no login dialog). A start by an ibgw-ops verb or a window records
its own login and how far the container's log is accounted for (``read_to``); the watchdog records every other
login it reads in the log after that: IBC's cold restarts, the gateway's daily restarts, Docker's restart policy. So
``status`` tells a session that has ended from one that runs on, and the watchdog never alerts a verb's own login.

One JSON file per instance, root only, written under the instance's lock by both writers.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from .host_files import json_object, keep_json

FULL = "full"
RESUMED = "resumed"
# Logins kept: a week of daily restarts and a few incidents fit many times over.
KEEP = 100


@dataclass
class Ledger:
    """What is known of the instance's logins.

    The logins (oldest first), the log time they are accounted to, the container start of the last verb, and the
    cause, kind and preceding exit of a login in progress at ``read_to`` (a push not approved yet).
    """

    read_to: str = ""
    started_at: str = ""
    logins: list[dict[str, str]] = field(default_factory=list)
    pending_cause: str = ""
    pending_kind: str = ""
    pending_exit: str = ""

    def add(self, at: str, kind: str, source: str) -> None:
        """One login: when it completed (ISO 8601, UTC), full or resumed, and what started it."""
        self.logins = [*self.logins, {"at": at, "kind": kind, "source": source}][-KEEP:]

    @property
    def last(self) -> dict[str, str] | None:
        """The newest login, or None."""
        return self.logins[-1] if self.logins else None


def load(path: str) -> Ledger:
    """The instance's ledger; an empty one when there is none, or it is unreadable."""
    found = json_object(path) if path else {}
    logins = found.get("logins")
    return Ledger(read_to=str(found.get("read_to") or ""), started_at=str(found.get("started_at") or ""),
                  logins=[dict(entry) for entry in logins if isinstance(entry, dict)] if isinstance(logins, list)
                  else [], pending_cause=str(found.get("pending_cause") or ""),
                  pending_kind=str(found.get("pending_kind") or ""),
                  pending_exit=str(found.get("pending_exit") or ""))


def save(path: str, ledger: Ledger) -> None:
    """Atomically, root only ("" for no ledger)."""
    if path:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        keep_json(path, asdict(ledger))


def write_signin(path: str, at: str) -> None:
    """Live's sign-in record: when the weekly session began (the calendar of ``status`` and the watchdog reads it)."""
    temporary = f"{path}.tmp"
    with open(temporary, "w") as record:
        record.write(at + "\n")
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)
