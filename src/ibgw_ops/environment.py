"""The environment variables ibgw-ops reads, under one rule: set but empty is a mistake, refused naming it.

An empty value usually comes from a script that meant to set one (``IBGW_OPS_INVENTORY=$PROD`` with ``$PROD``
unset); falling back silently would act on another inventory, another state folder, or without the alerts.
"""

from __future__ import annotations

import os

from ibgw_ops.errors import BadInput

# Each variable ibgw-ops reads, and what it allows.
ALLOWED = {
    "IBGW_OPS_INVENTORY": "an inventory file or folder",
    "IBGW_OPS_STATE_DIR": "a folder for ibgw-ops' state",
    "ANSIBLE_VAULT_PASSWORD_FILE": "a file holding the vault password, or a program printing it",
    "IBGW_OPS_ALERT_WEBHOOK": "https://host/path, http://host:port/path",
    "IBGW_OPS_ALERT_TIMEOUT": "more than 0, at most 60",
    "IBGW_OPS_COMPUTE_ENDPOINT": "https://host[:port][/path] (http:// only for a local fake)",
    "GOOGLE_APPLICATION_CREDENTIALS": "a service account key or ADC JSON file",
}


def check() -> None:
    """Refuse every variable of ``ALLOWED`` that is set but empty, all in one message, before a verb runs."""
    empty = [name for name in ALLOWED if _empty(name)]
    if len(empty) == 1:
        value(empty[0])
    if empty:
        raise BadInput(", ".join(empty), "set but empty",
                       "; ".join(f"{name}: {ALLOWED[name]}" for name in empty) + "; or unset them")


def value(name: str) -> str | None:
    """``$name`` (one of ``ALLOWED``), or None when unset; set to nothing (or blanks only) is refused with exit 2."""
    if _empty(name):
        raise BadInput(name, "set but empty", f"{ALLOWED[name]}, or unset it")
    return os.environ.get(name)


def _empty(name: str) -> bool:
    raw = os.environ.get(name)
    return raw is not None and not raw.strip()
