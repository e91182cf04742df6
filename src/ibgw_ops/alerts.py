"""Alerts: one grep-able line on stderr per event, a JSON POST to a webhook, and the inventory's Apprise URLs.

The webhook's POST is on_host.alert's; the Apprise URLs are ``ib_gateway_alert_urls``, the same the VM uses, sent
through Apprise from PyPI. The line is ``IBGW_ALERT <kind> <instance> <detail>``. The role reports alerts as
``ibgw_alert`` payloads (so plain ``ansible-playbook`` runs show them too); the CLI relays them here. A destination
that fails is noted on stderr (never its URL) and never changes the outcome of the operation that raised it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from ibgw_ops import environment, inventory
from ibgw_ops.errors import BadInput, OpsError
from ibgw_ops.on_host.alert import Alert, post

__all__ = ["Alert", "Webhook", "apprise_urls", "emit", "notify", "webhook"]

WEBHOOK_ENV = "IBGW_OPS_ALERT_WEBHOOK"
TIMEOUT_ENV = "IBGW_OPS_ALERT_TIMEOUT"
DEFAULT_TIMEOUT = 5.0
WEBHOOK_ALLOWED = environment.ALLOWED[WEBHOOK_ENV]
TIMEOUT_ALLOWED = environment.ALLOWED[TIMEOUT_ENV]


@dataclass(frozen=True)
class Webhook:
    """Where alerts are POSTed, and how long one POST may take."""

    url: str
    timeout: float


def webhook() -> Webhook | None:
    """The webhook from the environment; bad values are bad input, found before anything runs."""
    url = environment.value(WEBHOOK_ENV)
    raw = (environment.value(TIMEOUT_ENV) or str(DEFAULT_TIMEOUT)).strip()
    if url is None:
        return None
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInput(WEBHOOK_ENV, "not an http(s) URL with a host", WEBHOOK_ALLOWED)
    try:
        timeout = float(raw)
    except ValueError:
        timeout = 0.0
    if not 0 < timeout <= 60:
        raise BadInput(TIMEOUT_ENV, f"'{raw}' is not a number of seconds", TIMEOUT_ALLOWED)
    return Webhook(url, timeout)


def emit(alert: Alert, source: Path | None = None) -> None:
    """Print the alert's line on stderr, POST it to the webhook when one is set, and send it to Apprise.

    The Apprise URLs are those the inventory at ``source`` sets for the alert's host (every host's when it names none).
    """
    print(alert.line(), file=sys.stderr, flush=True)
    hook = webhook()
    if hook is not None:
        failed = post(alert, hook.url, hook.timeout)
        if failed:
            _note(f"the alert webhook failed ({failed}); the alert is only in this output")
    if source is None:
        return
    try:
        urls = apprise_urls(source, alert.host)
    except OpsError as exc:
        _note(f"the inventory's Apprise URLs could not be read ({str(exc).splitlines()[0]})")
        return
    for index in notify(alert, urls):
        _note(f"ib_gateway_alert_urls[{index}] did not take the alert")


_hostvars = cache(inventory.host_vars)


def apprise_urls(source: Path, host: str) -> list[str]:
    """The host's ``ib_gateway_alert_urls`` as the inventory resolves them; without a host, every host's, once."""
    hosts = _hostvars(source)
    chosen = [hosts[host]] if host in hosts else list(hosts.values())
    found: list[str] = []
    for variables in chosen:
        urls = variables.get("ib_gateway_alert_urls")
        found += [str(url) for url in urls] if isinstance(urls, list) else []
    return list(dict.fromkeys(found))


def notify(alert: Alert, urls: Sequence[str]) -> list[int]:
    """Send the alert to each URL with Apprise; the positions of those that did not take it."""
    if not urls:
        return []
    import apprise  # noqa: PLC0415 - its plugins load in about a second: only when there is something to send

    apprise_log = logging.getLogger("apprise")
    apprise_log.disabled = True  # its messages may quote a URL
    try:
        failed = []
        for index, url in enumerate(urls):
            sender = apprise.Apprise()
            if not (sender.add(url) and sender.notify(title=alert.title(), body=alert.message())):
                failed.append(index)
        return failed
    finally:
        apprise_log.disabled = False


def _note(text: str) -> None:
    print(f"ibgw-ops: note: {text}", file=sys.stderr, flush=True)
