"""An alert's record, its words for a person, and its webhook POST: the same for the controller and the VM.

``IBGW_ALERT <kind> <instance> <detail>`` is the grep-able line; the webhook gets the JSON body
``{kind, instance, detail, host, time}``; Apprise's destinations get ``title()`` and ``message()``, short enough for
a phone's notification. One POST has a short timeout: on the VM, retries are the spool's (``alert_spool``), tick
after tick, never a wait inside one.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

# One line each, as docs/operations.md's alert tables say it.
WHAT_TO_DO = {
    "2fa_needed": "approve the IBKR Mobile notification before the deadline",
    "login_failed": "fix the credentials, deploy, then sign in once more",
    "session_taken": "paper: agree a time with the trader; live: find out who used the login, then live-signin",
    "not_ready": "ibgw-ops logs and status; for live, live-signin; never loop restarts",
    "api_hung": "ibgw-ops logs; a soft restart (IBC RESTART) needs no 2FA",
    "disconnected": "IBKR's side: wait, check IBKR's system status; status shows the notices",
    "container_exited": "ibgw-ops logs --previous; raise java_heap_size or the VM's memory if OOMKilled",
    "recovered": "nothing: the gateway is ready again",
    "signin_due": "run ibgw-ops live-signin and approve the 2FA push",
    "session_expiring": "plan the next ibgw-ops live-signin before the time shown",
    "restart_full_login": "live: approve the push that follows, or ibgw-ops down live; paper: tell the trader",
    "login_refused": "the gateway is stopped: check the password and the account, deploy, then start it",
    "unplanned_start": "find out why the machine or Docker restarted; live: approve the push that follows",
    "ibkr_reset": "IBKR's side: check IBKR's system status; live: approve the push that follows",
    "competing_login": "live kept its session; if the other login was not yours, change the IBKR user's password",
    "api_read_only": "set ib_gateway_read_only_api: 'no' (or check the API settings through VNC), deploy, restart",
}


@dataclass(frozen=True)
class Alert:
    """Something an operator must act on, for one gateway instance."""

    kind: str
    instance: str
    detail: str
    host: str = ""
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def line(self) -> str:
        """The record: kind and instance are single tokens, the detail is the rest of the line."""
        detail = " ".join(self.detail.split())
        return f"IBGW_ALERT {self.kind} {self.instance} {detail}"

    def title(self) -> str:
        """What a phone shows first: the kind, the instance and where."""
        where = f" on {self.host}" if self.host else ""
        return f"IB Gateway {self.instance}{where}: {self.kind}"

    def message(self) -> str:
        """The detail (with its deadline where there is one), what to do, and when it was seen."""
        todo = WHAT_TO_DO.get(self.kind, "see docs/operations.md, section Alerts")
        return f"{' '.join(self.detail.split())}\nWhat to do: {todo}\nSeen at {self.time}"

    def body(self) -> bytes:
        """The webhook's JSON body."""
        return json.dumps(asdict(self)).encode()


def post(alert: Alert, url: str, timeout: float) -> str:
    """POST the alert once; "" when the webhook took it, else why not (never the URL: it may carry a token)."""
    return _post(url, alert.body(), "application/json", timeout)


def ping(url: str, text: str, timeout: float) -> str:
    """A heartbeat: POST a line of text to the URL (healthchecks.io keeps it with the ping); "" when it answered 2xx."""
    return _post(url, text.encode(), "text/plain", timeout)


def _post(url: str, data: bytes, content_type: str, timeout: float) -> str:
    """One POST; a redirect is followed, anything but 2xx fails."""
    if not url.startswith(("http://", "https://")):
        return "not an http(s) URL"
    request = urllib.request.Request(url, data=data, method="POST",  # noqa: S310 - http(s) checked above
                                     headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) checked above
            response.read()
    except (OSError, ValueError) as exc:  # URLError, HTTPError and timeouts are OSErrors; none names the URL
        return str(exc) or type(exc).__name__
    return ""
