"""The ibgw_timers module run as Ansible runs it, with systemctl played by a script that keeps which timers run.

The window and sign-in units: the host's units under the prefixes become exactly the wanted ones. The watchdog's:
units written once, a timer per instance, idempotent, a removed instance's timer stopped, state absent undoes all.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.unit.role_module import result_of, run_module

TIMER = "[Timer]\nOnCalendar=Mon *-*-* 08:55:00 America/New_York\n"
UNITS = {"ibgw-watchdog@.service": "[Service]\nExecStart=/bin/true\n",
         "ibgw-watchdog@.timer": "[Timer]\nOnUnitActiveSec=30s\n"}
# systemctl as far as the module uses it: a file per enabled and running timer under $FAKE/running.
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


def run(tmp_path: Path, arguments: dict[str, Any]) -> dict[str, Any]:
    """The module's result, its unit_dir tmp_path/units; the systemctl calls of this run only in tmp_path/calls."""
    bin_dir = tmp_path / "bin"
    (tmp_path / "units").mkdir(exist_ok=True)
    if not bin_dir.exists():
        bin_dir.mkdir()
        (tmp_path / "running").mkdir()
        (bin_dir / "systemctl").write_text(SYSTEMCTL)
        (bin_dir / "systemctl").chmod(0o755)
    (tmp_path / "calls").write_text("")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE": str(tmp_path)}
    return result_of(run_module("ibgw_timers", {"unit_dir": str(tmp_path / "units"), **arguments}, tmp_path, env=env))


def windows(tmp_path: Path, units: dict[str, str], *, check: bool = False, **options: Any) -> dict[str, Any]:
    """Window and sign-in units only."""
    return run(tmp_path, {"units": units, "_ansible_check_mode": check, **options})


def watchdog(tmp_path: Path, window_units: dict[str, str] | None = None, **arguments: Any) -> dict[str, Any]:
    """The watchdog's arguments (and window units when given) in one call; the watchdog's result merged in."""
    check = {key: arguments.pop(key) for key in list(arguments) if key.startswith("_ansible")}
    result = run(tmp_path, {"watchdog": {"units": UNITS, **arguments}, "units": window_units or {}, **check})
    return {**result, **result.get("watchdog", {})}


def calls(tmp_path: Path) -> list[str]:
    """The systemctl calls that change something, in order."""
    return [line for line in (tmp_path / "calls").read_text().splitlines()
            if not line.startswith(("is-", "list-units"))]


def test_new_units_are_written_reloaded_and_their_timers_started_then_nothing_changes(tmp_path):
    units = {"ibgw-window-paper-1-start.timer": TIMER, "ibgw-window-paper-1-start.service": "[Service]\n"}
    assert windows(tmp_path, units, check=True)["changed"] is True
    assert not list((tmp_path / "units").iterdir())
    first = windows(tmp_path, units)
    assert (first["changed"], first["started"]) == (True, ["ibgw-window-paper-1-start.timer"])
    assert (tmp_path / "units" / "ibgw-window-paper-1-start.timer").read_text() == TIMER
    assert oct((tmp_path / "units" / "ibgw-window-paper-1-start.timer").stat().st_mode & 0o777) == "0o644"
    assert calls(tmp_path) == ["daemon-reload", "enable ibgw-window-paper-1-start.timer",
                               "restart ibgw-window-paper-1-start.timer"]
    again = windows(tmp_path, units)
    assert (again["changed"], calls(tmp_path)) == (False, [])


def test_units_no_longer_wanted_are_disabled_and_removed_and_others_left_alone(tmp_path):
    (tmp_path / "units").mkdir()
    (tmp_path / "units" / "ibgw-window-old-1-end.timer").write_text(TIMER)
    (tmp_path / "units" / "ibgw-window-old-1-end.service").write_text("[Service]\n")
    (tmp_path / "units" / "ssh.service").write_text("[Service]\n")
    result = windows(tmp_path, {})
    assert (result["changed"], result["removed"]) == (True, ["ibgw-window-old-1-end.service",
                                                             "ibgw-window-old-1-end.timer"])
    assert sorted(path.name for path in (tmp_path / "units").iterdir()) == ["ssh.service"]
    assert calls(tmp_path) == ["disable --now ibgw-window-old-1-end.timer", "daemon-reload"]


def test_an_operator_s_drop_in_folder_is_left_alone_when_its_unit_stays_or_goes(tmp_path):
    units = {"ibgw-window-paper-1-start.timer": TIMER}
    drop_in = tmp_path / "units" / "ibgw-window-paper-1-start.timer.d"
    drop_in.mkdir(parents=True)
    (drop_in / "override.conf").write_text("[Timer]\nOnCalendar=\nOnCalendar=*-*-* 09:00:00\n")
    assert windows(tmp_path, units)["removed"] == []
    assert windows(tmp_path, units)["changed"] is False
    gone = windows(tmp_path, {})
    assert gone["removed"] == ["ibgw-window-paper-1-start.timer"] and (drop_in / "override.conf").exists()


def test_a_unit_outside_the_prefix_is_refused(tmp_path):
    result = windows(tmp_path, {"ssh.service": "[Service]\n"})
    assert result["failed"] and "names must be file names starting with ibgw-window-" in result["msg"]


def test_two_prefixes_in_one_call_own_their_units_and_only_theirs(tmp_path):
    prefixes = ["ibgw-window-", "ibgw-signin-"]
    units = {"ibgw-window-paper-1-start.timer": TIMER, "ibgw-signin-live.timer": TIMER}
    (tmp_path / "units").mkdir()
    (tmp_path / "units" / "ibgw-watchdog@.timer").write_text(TIMER)
    first = windows(tmp_path, units, prefixes=prefixes)
    assert first["started"] == ["ibgw-signin-live.timer", "ibgw-window-paper-1-start.timer"]
    assert windows(tmp_path, units, prefixes=prefixes)["changed"] is False
    gone = windows(tmp_path, {"ibgw-window-paper-1-start.timer": TIMER}, prefixes=prefixes)
    assert gone["removed"] == ["ibgw-signin-live.timer"]
    assert sorted(path.name for path in (tmp_path / "units").iterdir()) == [
        "ibgw-watchdog@.timer", "ibgw-window-paper-1-start.timer"]
    refused = windows(tmp_path, {"ibgw-watchdog@.timer": TIMER}, prefixes=prefixes)
    assert refused["failed"] and "starting with ibgw-window- or ibgw-signin-" in refused["msg"]


def test_units_and_a_timer_per_instance_then_nothing_changes_the_second_time(tmp_path):
    first = watchdog(tmp_path, instances=["live", "paper"])
    assert first["changed"] and not first.get("failed"), first
    assert (tmp_path / "units" / "ibgw-watchdog@.timer").read_text() == UNITS["ibgw-watchdog@.timer"]
    assert oct((tmp_path / "units" / "ibgw-watchdog@.service").stat().st_mode & 0o777) == "0o644"
    assert calls(tmp_path) == ["daemon-reload", "enable --now ibgw-watchdog@live.timer",
                               "enable --now ibgw-watchdog@paper.timer"]
    second = watchdog(tmp_path, instances=["live", "paper"])
    assert second["changed"] is False and calls(tmp_path) == []


def test_a_changed_interval_restarts_the_timers_and_a_removed_instance_s_timer_stops(tmp_path):
    watchdog(tmp_path, instances=["live", "paper"])
    faster = {**UNITS, "ibgw-watchdog@.timer": "[Timer]\nOnUnitActiveSec=5s\n"}
    changed = watchdog(tmp_path, instances=["live"], units=faster)
    assert calls(tmp_path) == ["disable --now ibgw-watchdog@paper.timer", "daemon-reload",
                               "restart ibgw-watchdog@live.timer"]
    assert "ibgw-watchdog@paper.timer" in changed["changes"]


def test_state_absent_stops_every_timer_and_removes_the_units_and_the_listed_files(tmp_path):
    watchdog(tmp_path, instances=["live", "paper"])
    webhook = tmp_path / "alert-webhook"
    webhook.write_text("https://hooks.example.net/x\n")
    gone = watchdog(tmp_path, state="absent", instances=["live", "paper"], remove=[str(webhook)])
    assert gone["changed"]
    assert calls(tmp_path) == ["disable --now ibgw-watchdog@live.timer", "disable --now ibgw-watchdog@paper.timer",
                               "daemon-reload"]
    assert list((tmp_path / "units").iterdir()) == [] and not webhook.exists()
    assert watchdog(tmp_path, state="absent", instances=["live"])["changed"] is False


def test_check_mode_reports_and_changes_nothing(tmp_path):
    result = watchdog(tmp_path, instances=["live"], _ansible_check_mode=True)
    assert result["changed"] and calls(tmp_path) == [] and list((tmp_path / "units").iterdir()) == []


def test_units_without_one_timer_template_fail_naming_them(tmp_path):
    result = watchdog(tmp_path, units={"ibgw-watchdog@.service": "x"})
    assert result["failed"] and "exactly one timer template" in result["msg"]


def test_the_window_units_and_the_watchdog_are_one_call(tmp_path):
    units = {"ibgw-window-paper-1-start.timer": TIMER, "ibgw-window-paper-1-start.service": "[Service]\n"}
    both = watchdog(tmp_path, window_units=units, instances=["paper"])
    assert both["changed"] and both["written"] == sorted(units)
    assert calls(tmp_path) == ["daemon-reload", "enable ibgw-window-paper-1-start.timer",
                               "restart ibgw-window-paper-1-start.timer", "daemon-reload",
                               "enable --now ibgw-watchdog@paper.timer"]
    assert watchdog(tmp_path, window_units=units, instances=["paper"])["changed"] is False
    gone = watchdog(tmp_path, window_units=units, instances=["paper"], units={"ibgw-watchdog@.service": "x"})
    assert gone["failed"] and "watchdog.units: exactly one timer template" in gone["msg"]
    assert (tmp_path / "units" / "ibgw-window-paper-1-start.timer").exists()
