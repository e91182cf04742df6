"""Alerts: one stable, grep-able line on stderr per event, optionally POSTed as JSON to a webhook (on_host.alert).

``IBGW_ALERT <kind> <instance> <detail>``. The role reports alerts as ``ibgw_alert`` payloads (so plain
``ansible-playbook`` runs show them too); the CLI relays them here. A webhook that fails is noted on stderr and
never changes the outcome of the operation that raised the alert.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from urllib.parse import urlsplit

from ibgw_ops.errors import BadInput
from ibgw_ops.on_host.alert import Alert, post

__all__ = ["Alert", "Webhook", "emit", "webhook"]

WEBHOOK_ENV = "IBGW_OPS_ALERT_WEBHOOK"
TIMEOUT_ENV = "IBGW_OPS_ALERT_TIMEOUT"
DEFAULT_TIMEOUT = 5.0


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
    failed = post(alert, hook.url, hook.timeout)
    if failed:
        print(f"ibgw-ops: note: the alert webhook failed ({failed}); the alert is only in this output",
              file=sys.stderr, flush=True)
