"""The payloads the CLI reads from a run (``ibgw_<kind>`` debug messages) are the ones the role reports."""

from __future__ import annotations

import re
from typing import Any

import yaml

from ibgw_ops import ansible_events
from tests.support.layout import ROLES, ROOT
from tests.unit.test_failure_classes import tasks


def reported_kinds() -> set[str]:
    """The keys of every single-key debug message in the ib_gateway role."""
    kinds: set[str] = set()
    for path in (ROLES / "ib_gateway" / "tasks").glob("*.yml"):
        for task in tasks(yaml.safe_load(path.read_text())):
            message: Any = (task.get("ansible.builtin.debug") or {}).get("msg")
            if isinstance(message, dict) and len(message) == 1:
                kinds.update(message)
    return kinds


def test_every_payload_the_cli_reads_is_reported_by_the_role():
    read = set(re.findall(r'"(ibgw_[a-z]+)"', (ROOT / "src" / "ibgw_ops" / "lifecycle.py").read_text()))
    read |= set(re.findall(r'payloads\["(ibgw_[a-z]+)"\]', (ROOT / "src" / "ibgw_ops" / "ansible_run.py").read_text()))
    assert read >= {"ibgw_status", "ibgw_ready", "ibgw_logs", "ibgw_alert"}, read
    assert read <= reported_kinds()
    assert all(kind.startswith(ansible_events.PAYLOAD_PREFIX) for kind in reported_kinds())
