"""An alert's record and its webhook POST, the same from the controller's verbs and from the VM's watchdog.

``IBGW_ALERT <kind> <instance> <detail>`` is the grep-able line; the webhook gets the JSON body
``{kind, instance, detail, host, time}``. A POST is tried once with a short timeout: an alert path that retries
would pile up behind a dead webhook (the watchdog ticks every few seconds).
"""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime


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

    def body(self) -> bytes:
        """The webhook's JSON body."""
        return json.dumps(asdict(self)).encode()


def post(alert: Alert, url: str, timeout: float) -> str:
    """POST the alert once; "" when the webhook took it, else why not (never the URL: it may carry a token)."""
    if not url.startswith(("http://", "https://")):
        return "the webhook is not an http(s) URL"
    request = urllib.request.Request(url, data=alert.body(), method="POST",  # noqa: S310 - http(s) checked above
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) checked above
            response.read()
    except (OSError, ValueError) as exc:  # URLError, HTTPError and timeouts are OSErrors; none names the URL
        return str(exc) or type(exc).__name__
    return ""


def emit(alerts: Sequence[Alert], webhook_file: str, timeout: float, program: str) -> None:
    """On the VM: each alert's line on stdout (the journal), then one POST each when the webhook file names a URL.

    The URL lives in a root-only file (it may carry a token), never in a unit, argv or the environment.
    """
    try:
        with open(webhook_file) as source:
            url = source.read().strip()
    except OSError:
        url = ""
    for alert in alerts:
        print(alert.line(), flush=True)
        failed = post(alert, url, timeout) if url else ""
        if failed:
            print(f"{program}: the alert webhook failed ({failed}); the alert is only in the journal",
                  file=sys.stderr, flush=True)
