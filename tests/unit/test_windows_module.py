"""The ibgw_timers module's window and sign-in units against a fake systemctl: the host's window units become
exactly the wanted ones."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.unit.role_module import result_of, run_module

TIMER = "[Timer]\nOnCalendar=Mon *-*-* 08:55:00 America/New_York\n"


def fake_systemctl(directory: Path) -> Path:
    """A systemctl that logs its arguments; timers listed in ``active`` are enabled and active."""
    bin_dir = directory / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "systemctl"
    script.write_text(f"#!/bin/sh\necho \"$*\" >>{directory}/calls\n"
                      f"case \"$1\" in is-enabled|is-active) grep -qx \"$3\" {directory}/active 2>/dev/null;; esac\n")
    script.chmod(0o755)
    return bin_dir


def apply(tmp_path: Path, units: dict[str, str], *, check: bool = False, **options: Any) -> dict[str, Any]:
    env = {**os.environ, "PATH": f"{fake_systemctl(tmp_path)}:{os.environ['PATH']}"}
    (tmp_path / "units").mkdir(exist_ok=True)
    return result_of(run_module("ibgw_timers", {"units": units, "unit_dir": str(tmp_path / "units"),
                                                 "_ansible_check_mode": check, **options}, tmp_path, env=env))


def calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls"
    lines = path.read_text().splitlines() if path.exists() else []
    path.unlink(missing_ok=True)
    return [line for line in lines if not line.startswith("is-")]


def test_new_units_are_written_reloaded_and_their_timers_started_then_nothing_changes(tmp_path):
    units = {"ibgw-window-paper-1-start.timer": TIMER, "ibgw-window-paper-1-start.service": "[Service]\n"}
    assert apply(tmp_path, units, check=True)["changed"] is True
    assert not list((tmp_path / "units").iterdir())
    first = apply(tmp_path, units)
    assert (first["changed"], first["started"]) == (True, ["ibgw-window-paper-1-start.timer"])
    assert (tmp_path / "units" / "ibgw-window-paper-1-start.timer").read_text() == TIMER
    assert oct((tmp_path / "units" / "ibgw-window-paper-1-start.timer").stat().st_mode & 0o777) == "0o644"
    assert calls(tmp_path) == ["daemon-reload", "enable ibgw-window-paper-1-start.timer",
                               "restart ibgw-window-paper-1-start.timer"]
    (tmp_path / "active").write_text("ibgw-window-paper-1-start.timer\n")
    again = apply(tmp_path, units)
    assert (again["changed"], calls(tmp_path)) == (False, [])


def test_units_no_longer_wanted_are_disabled_and_removed_and_others_left_alone(tmp_path):
    (tmp_path / "units").mkdir()
    (tmp_path / "units" / "ibgw-window-old-1-end.timer").write_text(TIMER)
    (tmp_path / "units" / "ibgw-window-old-1-end.service").write_text("[Service]\n")
    (tmp_path / "units" / "ssh.service").write_text("[Service]\n")
    result = apply(tmp_path, {})
    assert (result["changed"], result["removed"]) == (True, ["ibgw-window-old-1-end.service",
                                                             "ibgw-window-old-1-end.timer"])
    assert sorted(path.name for path in (tmp_path / "units").iterdir()) == ["ssh.service"]
    assert calls(tmp_path) == ["disable --now ibgw-window-old-1-end.timer", "daemon-reload"]


def test_an_operator_s_drop_in_folder_is_left_alone_when_its_unit_stays_or_goes(tmp_path):
    units = {"ibgw-window-paper-1-start.timer": TIMER}
    drop_in = tmp_path / "units" / "ibgw-window-paper-1-start.timer.d"
    drop_in.mkdir(parents=True)
    (drop_in / "override.conf").write_text("[Timer]\nOnCalendar=\nOnCalendar=*-*-* 09:00:00\n")
    assert apply(tmp_path, units)["removed"] == []
    (tmp_path / "active").write_text("ibgw-window-paper-1-start.timer\n")
    assert apply(tmp_path, units)["changed"] is False
    gone = apply(tmp_path, {})
    assert gone["removed"] == ["ibgw-window-paper-1-start.timer"] and (drop_in / "override.conf").exists()


def test_a_unit_outside_the_prefix_is_refused(tmp_path):
    result = apply(tmp_path, {"ssh.service": "[Service]\n"})
    assert result["failed"] and "names must be file names starting with ibgw-window-" in result["msg"]


def test_two_prefixes_in_one_call_own_their_units_and_only_theirs(tmp_path):
    prefixes = ["ibgw-window-", "ibgw-signin-"]
    units = {"ibgw-window-paper-1-start.timer": TIMER, "ibgw-signin-live.timer": TIMER}
    (tmp_path / "units").mkdir()
    (tmp_path / "units" / "ibgw-watchdog@.timer").write_text(TIMER)
    first = apply(tmp_path, units, prefixes=prefixes)
    assert first["started"] == ["ibgw-signin-live.timer", "ibgw-window-paper-1-start.timer"]
    (tmp_path / "active").write_text("ibgw-window-paper-1-start.timer\nibgw-signin-live.timer\n")
    assert apply(tmp_path, units, prefixes=prefixes)["changed"] is False
    gone = apply(tmp_path, {"ibgw-window-paper-1-start.timer": TIMER}, prefixes=prefixes)
    assert gone["removed"] == ["ibgw-signin-live.timer"]
    assert sorted(path.name for path in (tmp_path / "units").iterdir()) == [
        "ibgw-watchdog@.timer", "ibgw-window-paper-1-start.timer"]
    refused = apply(tmp_path, {"ibgw-watchdog@.timer": TIMER}, prefixes=prefixes)
    assert refused["failed"] and "starting with ibgw-window- or ibgw-signin-" in refused["msg"]
