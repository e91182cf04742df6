"""Jinja filters of the ib_gateway role: its instances resolved and its credentials sorted, in tested Python.

These ran as Jinja ``{% for %}`` programs in vars/main.yml, re-evaluated on every reference. Credentials are only
ever looked at by name: no filter returns or formats a value, only instance names, keys and file names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# The credentials entry's keys that hold a password, each with the secret file it becomes.
PASSWORD_FILES = {"password": "tws_password", "vnc_password": "vnc_password"}


def resolve_instances(instances: list[Mapping[str, Any]], defaults: Mapping[str, Any],
                      mode_defaults: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every instance with its settings: its own keys over its mode's defaults over the role-wide defaults."""
    return [{**defaults, **mode_defaults.get(str(instance.get("mode")), {}), **instance} for instance in instances]


def _given(entry: Mapping[str, Any], key: str) -> bool:
    value = entry.get(key)
    return value is not None and len(str(value)) > 0


def _entry(credentials: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    entry = credentials.get(name)
    return entry if isinstance(entry, Mapping) else {}


def missing_credentials(instances: list[Mapping[str, Any]], credentials: Mapping[str, Any]) -> list[str]:
    """Instances lacking a user id, or a password of either kind (a value or a Secret Manager version)."""
    missing = []
    for instance in instances:
        entry = _entry(credentials, instance["name"])
        if not (_given(entry, "user_id") and (_given(entry, "password") or _given(entry, "password_secret"))):
            missing.append(instance["name"])
    return missing


def ambiguous_credentials(instances: list[Mapping[str, Any]], credentials: Mapping[str, Any]) -> list[str]:
    """"<instance>.<key>" for each password given both as a value and as a Secret Manager version."""
    return [f"{instance['name']}.{key}" for instance in instances for key in PASSWORD_FILES
            if _given(_entry(credentials, instance["name"]), key)
            and _given(_entry(credentials, instance["name"]), f"{key}_secret")]


def bad_secret_names(instances: list[Mapping[str, Any]], credentials: Mapping[str, Any], pattern: str) -> list[str]:
    """"<instance>.<key>_secret" for each Secret Manager version name that does not match the pattern."""
    bad = []
    for instance in instances:
        entry = _entry(credentials, instance["name"])
        for key in PASSWORD_FILES:
            name = entry.get(f"{key}_secret")
            if _given(entry, f"{key}_secret") and not (isinstance(name, str) and re.match(pattern, name)):
                bad.append(f"{instance['name']}.{key}_secret")
    return bad


def vnc_instances(instances: list[Mapping[str, Any]], credentials: Mapping[str, Any]) -> list[str]:
    """The instances with a VNC password (a value or a Secret Manager version): VNC is on for them only."""
    return [instance["name"] for instance in instances
            if _given(_entry(credentials, instance["name"]), "vnc_password")
            or _given(_entry(credentials, instance["name"]), "vnc_password_secret")]


def secret_files(instances: list[Mapping[str, Any]], credentials: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each instance's secret files and where each comes from.

    ``key`` is the credentials entry's key holding the password (``secret_manager`` false) or the Secret Manager
    version name (``secret_manager`` true); a Secret Manager version wins over a value.
    """
    files = []
    for instance in instances:
        entry = _entry(credentials, instance["name"])
        for key, file in PASSWORD_FILES.items():
            if _given(entry, f"{key}_secret"):
                files.append({"instance": instance["name"], "file": file, "key": f"{key}_secret",
                              "secret_manager": True})
            elif _given(entry, key):
                files.append({"instance": instance["name"], "file": file, "key": key, "secret_manager": False})
    return files


class FilterModule:
    """The role's filters, each named after the vars/main.yml variable it computes."""

    def filters(self) -> dict[str, Any]:
        """Ansible's filter plugin entry point."""
        return {
            "ib_gateway_resolve_instances": resolve_instances,
            "ib_gateway_missing_credentials": missing_credentials,
            "ib_gateway_ambiguous_credentials": ambiguous_credentials,
            "ib_gateway_bad_secret_names": bad_secret_names,
            "ib_gateway_vnc_instances": vnc_instances,
            "ib_gateway_secret_files": secret_files,
        }
