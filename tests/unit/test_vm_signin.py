"""The VM's weekly sign-in (ib_gateway_signin_schedule.on_vm): its timer's units, and the schedules deploy refuses."""

from __future__ import annotations

from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest

from tests.support.layout import settings_filters

SCHEDULE = {"day": "sun", "time": "17:00", "time_zone": "America/New_York", "on_vm": True}
WINDOW = {"time_zone": "America/New_York", "days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:30",
          "end": "16:00"}
LIVE = {"name": "live", "mode": "live", "relogin_after_twofa_timeout": "no", "twofa_timeout_action": "exit"}
PAPER = {"name": "paper", "mode": "paper", "relogin_after_twofa_timeout": "yes", "twofa_timeout_action": "restart"}
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def plugin() -> ModuleType:
    return settings_filters()


def errors(plugin: ModuleType, instances: list[dict[str, Any]] | None = None, window: dict[str, Any] | None = None,
           **schedule: Any) -> list[str]:
    return list(plugin._signin_errors([LIVE, PAPER] if instances is None else instances, {**SCHEDULE, **schedule},
                                      WINDOW if window is None else window, NOW))


def test_on_vm_gives_a_timer_per_live_instance_at_the_planned_time_running_the_window_s_start(plugin):
    units = plugin.signin_units([LIVE, PAPER], SCHEDULE, "/opt/ibgw")
    assert sorted(units) == ["ibgw-signin-live.service", "ibgw-signin-live.timer"]
    assert "OnCalendar=Sun *-*-* 17:00:00 America/New_York\nAccuracySec=1s\n" in units["ibgw-signin-live.timer"]
    assert "WantedBy=timers.target" in units["ibgw-signin-live.timer"]
    service = units["ibgw-signin-live.service"]
    assert "Type=oneshot\nEnvironment=PYTHONPATH=/opt/ibgw/live/lib\n" in service
    assert service.endswith("ExecStart=/usr/bin/python3 -m ibgw_on_host.gateway_start /opt/ibgw/live/start.json "
                            "--signin --time-zone America/New_York\n")


@pytest.mark.parametrize("on_vm", [False, None])
def test_without_on_vm_there_is_no_unit_so_deploy_removes_them(plugin, on_vm):
    schedule = {key: value for key, value in {**SCHEDULE, "on_vm": on_vm}.items() if value is not None}
    assert plugin.signin_units([LIVE, PAPER], schedule, "/opt/ibgw") == {}
    assert errors(plugin, on_vm=False) == []


@pytest.mark.parametrize(("day", "at", "zone"), [
    ("sun", "17:00", "America/New_York"),
    ("sun", "01:01", "America/New_York"),
    ("mon", "01:00", "America/New_York"),
    ("sun", "23:30", "Asia/Tokyo"),  # sun 09:30 or 10:30 in New York
    ("sun", "12:00", "Europe/Zurich"),
])
def test_a_sign_in_within_the_day_after_the_reset_and_outside_the_protected_window_is_accepted(plugin, day, at, zone):
    assert errors(plugin, day=day, time=at, time_zone=zone) == []


@pytest.mark.parametrize(("day", "at", "zone", "shown"), [
    ("sat", "17:00", "America/New_York", "Sat"),
    ("sun", "00:30", "America/New_York", "Sun"),
    ("sun", "01:00", "America/New_York", "Sun"),  # at the reset itself: a race with it
    ("sun", "07:00", "Asia/Tokyo", "Sat"),  # sat 17:00 or 18:00 in New York
    ("tue", "20:00", "America/New_York", "Tue"),
])
def test_a_sign_in_before_the_reset_or_days_after_it_is_refused_naming_the_field(plugin, day, at, zone, shown):
    found = errors(plugin, day=day, time=at, time_zone=zone)
    assert len(found) == 1, found
    assert found[0].startswith(f"ib_gateway_signin_schedule: with on_vm true the VM signs in at {day} {at} {zone}, "
                               "which must come after IBKR's weekly reset (sun 01:00 America/New_York)")
    assert f"; {shown} " in found[0] and "(allowed: from sun 01:01 to mon 01:00 America/New_York" in found[0]


def test_a_sign_in_inside_the_protected_window_is_refused(plugin):
    window = {**WINDOW, "days": ["sun"], "start": "12:00", "end": "18:00"}
    found = errors(plugin, window=window)
    assert found == ["ib_gateway_signin_schedule: with on_vm true the VM signs in at sun 17:00 America/New_York, "
                     "which falls inside ib_gateway_protected_window on Sun 2026-12-06 17:00 EST; plan it outside."]
    assert errors(plugin, window={}) == []


@pytest.mark.parametrize(("relogin", "action"), [("yes", "exit"), ("no", "restart"), (True, "exit")])
def test_a_live_instance_that_would_send_a_second_push_is_refused(plugin, relogin, action):
    live = {**LIVE, "relogin_after_twofa_timeout": relogin, "twofa_timeout_action": action}
    found = errors(plugin, [live, PAPER])
    assert len(found) == 1 and found[0].startswith(
        "ib_gateway_instances[live]: with ib_gateway_signin_schedule.on_vm true, relogin_after_twofa_timeout must be "
        '"no" and twofa_timeout_action "exit"'), found
    assert "repeated pushes can lock the account" in found[0]


def test_on_vm_must_be_a_boolean(plugin):
    assert errors(plugin, on_vm="yes") == ["ib_gateway_signin_schedule.on_vm: true or false (got 'yes')."]
