"""Alerts: one stable, grep-able line on stderr per event, optionally POSTed as JSON to a webhook.

``IBGW_ALERT <kind> <instance> <detail>``. The role reports alerts as ``ibgw_alert`` payloads (so plain
``ansible-playbook`` runs show them too); the CLI relays them here. A webhook that fails is noted on stderr and
never changes the outcome of the operation that raised the alert.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from ibgw_ops.errors import BadInput

WEBHOOK_ENV = "IBGW_OPS_ALERT_WEBHOOK"
TIMEOUT_ENV = "IBGW_OPS_ALERT_TIMEOUT"
DEFAULT_TIMEOUT = 5.0


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


@dataclass(frozen=True)
class Webhook:
    """Where alerts are POSTed, and how long one POST may take."""

    url: str
    timeout: float


def webhook() -> Webhook | None:
    """The webhook from the environment; bad values are bad input, found before anything runs."""
    url = os.environ.get(WEBHOOK_ENV, "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInput(WEBHOOK_ENV, "not an http(s) URL with a host", "https://host/path, http://host:port/path")
    raw = os.environ.get(TIMEOUT_ENV, "").strip() or str(DEFAULT_TIMEOUT)
    try:
        timeout = float(raw)
    except ValueError:
        timeout = 0.0
    if not 0 < timeout <= 60:
        raise BadInput(TIMEOUT_ENV, f"'{raw}' is not a number of seconds", "more than 0, at most 60")
    return Webhook(url, timeout)


def emit(alert: Alert) -> None:
    """Print the alert's line on stderr, then POST it to the webhook when one is set."""
    print(alert.line(), file=sys.stderr, flush=True)
    hook = webhook()
    if hook is None:
        return
    request = urllib.request.Request(hook.url, data=json.dumps(asdict(alert)).encode(), method="POST",  # noqa: S310
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=hook.timeout) as response:  # noqa: S310 - webhook() allows only http(s)
            response.read()
    except (OSError, ValueError) as exc:  # URLError and timeouts are OSErrors
        print(f"ibgw-ops: note: the alert webhook failed ({exc}); the alert is only in this output",
              file=sys.stderr, flush=True)
