"""The ibgw_timers module's watchdog units run as Ansible runs it, with systemctl played by a script that keeps which
timers run: units written once, a timer per instance, idempotent, a removed instance's timer stopped, state absent
undoes all."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.unit.role_module import result_of, run_module

UNITS = {"ibgw-watchdog@.service": "[Service]\nExecStart=/bin/true\n",
         "ibgw-watchdog@.timer": "[Timer]\nOnUnitActiveSec=30s\n"}
# systemctl as far as the module uses it: a file per running timer under $FAKE/running.
SYSTEMCTL = """#!/bin/sh
echo "$*" >> "$FAKE/calls"
case "$1" in
  is-active|is-enabled) [ -e "$FAKE/running/$3" ] ;;
  list-units) cd "$FAKE/running" && for unit in $5; do [ -e "$unit" ] && echo "$unit loaded active waiting x"; done ;;
  enable) for unit; do :; done; touch "$FAKE/running/$unit" ;;
  disable) rm -f "$FAKE/running/$3" ;;
  *) true ;;
esac
"""


def apply(tmp_path: Path, windows: dict[str, str] | None = None, **arguments: Any) -> dict[str, Any]:
    """The watchdog's arguments (and window units when given) in one call; the watchdog's result merged in."""
    bin_dir, units = tmp_path / "bin", tmp_path / "units"
    if not bin_dir.exists():
        bin_dir.mkdir()
        units.mkdir()
        (tmp_path / "running").mkdir()
        (bin_dir / "systemctl").write_text(SYSTEMCTL)
        (bin_dir / "systemctl").chmod(0o755)
    (tmp_path / "calls").write_text("")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE": str(tmp_path)}
    check = {key: arguments.pop(key) for key in list(arguments) if key.startswith("_ansible")}
    given = {"watchdog": {"units": UNITS, **arguments}, "unit_dir": str(units), "units": windows or {}, **check}
    result = result_of(run_module("ibgw_timers", given, tmp_path, env=env))
    return {**result, **result.get("watchdog", {})}


def calls(tmp_path: Path) -> list[str]:
    return [line for line in (tmp_path / "calls").read_text().splitlines()
            if not line.startswith(("is-", "list-units"))]


def test_units_and_a_timer_per_instance_then_nothing_changes_the_second_time(tmp_path):
    first = apply(tmp_path, instances=["live", "paper"])
    assert first["changed"] and not first.get("failed"), first
    assert (tmp_path / "units" / "ibgw-watchdog@.timer").read_text() == UNITS["ibgw-watchdog@.timer"]
    assert oct((tmp_path / "units" / "ibgw-watchdog@.service").stat().st_mode & 0o777) == "0o644"
    assert calls(tmp_path) == ["daemon-reload", "enable --now ibgw-watchdog@live.timer",
                               "enable --now ibgw-watchdog@paper.timer"]
    second = apply(tmp_path, instances=["live", "paper"])
    assert second["changed"] is False and calls(tmp_path) == []


def test_a_changed_interval_restarts_the_timers_and_a_removed_instance_s_timer_stops(tmp_path):
    apply(tmp_path, instances=["live", "paper"])
    faster = {**UNITS, "ibgw-watchdog@.timer": "[Timer]\nOnUnitActiveSec=5s\n"}
    changed = apply(tmp_path, instances=["live"], units=faster)
    assert calls(tmp_path) == ["disable --now ibgw-watchdog@paper.timer", "daemon-reload",
                               "restart ibgw-watchdog@live.timer"]
    assert "ibgw-watchdog@paper.timer" in changed["changes"]


def test_state_absent_stops_every_timer_and_removes_the_units_and_the_listed_files(tmp_path):
    apply(tmp_path, instances=["live", "paper"])
    webhook = tmp_path / "alert-webhook"
    webhook.write_text("https://hooks.example.net/x\n")
    gone = apply(tmp_path, state="absent", instances=["live", "paper"], remove=[str(webhook)])
    assert gone["changed"]
    assert calls(tmp_path) == ["disable --now ibgw-watchdog@live.timer", "disable --now ibgw-watchdog@paper.timer",
                               "daemon-reload"]
    assert list((tmp_path / "units").iterdir()) == [] and not webhook.exists()
    assert apply(tmp_path, state="absent", instances=["live"])["changed"] is False


def test_check_mode_reports_and_changes_nothing(tmp_path):
    result = apply(tmp_path, instances=["live"], _ansible_check_mode=True)
    assert result["changed"] and calls(tmp_path) == [] and list((tmp_path / "units").iterdir()) == []


def test_units_without_one_timer_template_fail_naming_them(tmp_path):
    result = apply(tmp_path, units={"ibgw-watchdog@.service": "x"})
    assert result["failed"] and "exactly one timer template" in result["msg"]


def test_the_window_units_and_the_watchdog_are_one_call(tmp_path):
    windows = {"ibgw-window-paper-1-start.timer": "[Timer]\n", "ibgw-window-paper-1-start.service": "[Service]\n"}
    both = apply(tmp_path, windows=windows, instances=["paper"])
    assert both["changed"] and both["written"] == sorted(windows)
    assert calls(tmp_path) == ["daemon-reload", "enable ibgw-window-paper-1-start.timer",
                               "restart ibgw-window-paper-1-start.timer", "daemon-reload",
                               "enable --now ibgw-watchdog@paper.timer"]
    assert apply(tmp_path, windows=windows, instances=["paper"])["changed"] is False
    gone = apply(tmp_path, windows=windows, instances=["paper"], units={"ibgw-watchdog@.service": "x"})
    assert gone["failed"] and "watchdog.units: exactly one timer template" in gone["msg"]
    assert (tmp_path / "units" / "ibgw-window-paper-1-start.timer").exists()
