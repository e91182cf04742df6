"""The ibgw_protected_window module run as Ansible runs it: refuses inside the window unless forced, never changes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.unit.role_module import result_of, run_module

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def zone_where_it_is(hour: int) -> str:
    """An Etc/GMT zone whose local hour is now ``hour`` (10:00-14:00 holds 12:xx, never 00:xx)."""
    offset = (hour - datetime.now(UTC).hour + 12) % 24 - 12
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/UTC"


def check(tmp_path: Path, window: dict[str, Any], *, force: bool = False) -> dict[str, Any]:
    arguments = {"window": window, "force": force, "action": "stop", "instances": ["live"]}
    return result_of(run_module("ibgw_protected_window", arguments, tmp_path))


def window(time_zone: str) -> dict[str, Any]:
    return {"time_zone": time_zone, "days": DAYS, "start": "10:00", "end": "14:00"}


def test_inside_the_window_it_refuses_and_names_the_instances_and_the_way_out(tmp_path):
    result = check(tmp_path, window(zone_where_it_is(12)))
    assert result["failed"] and result["inside"]
    assert result["msg"].startswith("PROTECTED WINDOW: refusing to stop live gateway(s) live inside")
    assert "-e ib_gateway_force=true" in result["msg"]


def test_forced_inside_the_window_it_passes_and_says_so(tmp_path):
    result = check(tmp_path, window(zone_where_it_is(12)), force=True)
    assert not result.get("failed") and result["inside"] and result["forced"]
    assert result["changed"] is False


@pytest.mark.parametrize("spec", [window(zone_where_it_is(0)), {}])
def test_outside_the_window_or_without_one_it_passes(tmp_path, spec):
    result = check(tmp_path, spec)
    assert not result.get("failed") and result["inside"] is False and result["changed"] is False


@pytest.mark.parametrize(("spec", "field"), [
    ({**window("Etc/UTC"), "time_zone": "Mars/Olympus"}, "time_zone"),
    ({**window("Etc/UTC"), "days": ["monday"]}, "days"),
    ({**window("Etc/UTC"), "start": "25:00"}, "start"),
    ({"days": DAYS, "start": "10:00", "end": "14:00"}, "time_zone"),
])
def test_a_bad_window_is_bad_input_naming_the_key(tmp_path, spec, field):
    result = check(tmp_path, spec)
    assert result["failed"]
    assert result["msg"].startswith(f"BAD INPUT: ib_gateway_protected_window.{field}"), result["msg"]
