"""Paper windows: checked as the VM will read them, rendered as systemd units, their times across daylight saving."""

from __future__ import annotations

from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest

from ibgw_ops.on_host import session_clock
from tests.support.layout import settings_filters

MORNING = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:55", "end": "09:40",
           "time_zone": "America/New_York"}


@pytest.fixture(scope="module")
def plugin() -> ModuleType:
    return settings_filters()


def window_errors(plugin: ModuleType, windows: Any, **instance: Any) -> list[str]:
    return list(plugin._window_errors({"name": "paper", "mode": "paper", "windows": windows, **instance},
                                      "ib_gateway_instances[paper]"))


def test_good_windows_have_no_errors(plugin):
    evening = {**MORNING, "start": "18:00", "end": "19:00", "time_zone": "Europe/Zurich"}
    assert window_errors(plugin, [MORNING, evening]) == []
    assert window_errors(plugin, []) == []


@pytest.mark.parametrize(("windows", "instance", "expected"), [
    ([{**MORNING, "days": ["monday"]}], {}, "windows[0].days: 'monday' is not a day (allowed: mon, tue"),
    ([{**MORNING, "start": "8:55"}], {}, "windows[0].start: '8:55' is not a 24-hour time HH:MM"),
    ([{**MORNING, "time_zone": "America/NewYork"}], {}, "windows[0].time_zone: 'America/NewYork' is not a known"),
    ([{**MORNING, "end": "08:55"}], {}, "windows[0].end: after start (got start 08:55, end 08:55)"),
    ([{**MORNING, "start": "23:00", "end": "01:00"}], {}, "does not span midnight; split it in two"),
    ([MORNING, {**MORNING, "start": "09:30", "end": "10:00"}], {}, "windows[0] and [1]: they overlap"),
    # The same hour in another zone overlaps too: 15:30 in Zurich is 09:30 in New York (outside DST's odd weeks).
    ([MORNING, {**MORNING, "start": "15:30", "end": "15:35", "time_zone": "Europe/Zurich"}], {}, "they overlap"),
    ([{**MORNING, "note": "x"}], {}, "windows[0]: a list of {days: [mon..sun], start: HH:MM"),
    ("mornings", {}, "windows: a list of {days"),
    ([MORNING], {"mode": "live"}, "a window starts paper instances only"),
])
def test_each_bad_window_is_named_with_what_is_allowed(plugin, windows, instance, expected):
    found = window_errors(plugin, windows, **instance)
    assert len(found) == 1, found
    assert expected in found[0]


def test_a_live_instance_may_opt_in(plugin):
    assert window_errors(plugin, [MORNING], mode="live", windows_allow_live=True) == []


def test_each_window_becomes_a_start_and_an_end_timer_with_its_zone(plugin):
    units = plugin.window_units([{"name": "paper", "windows": [MORNING]}, {"name": "live", "windows": []}],
                                "/opt/ibgw")
    assert sorted(units) == [f"ibgw-window-paper-1-{edge}.{kind}" for edge in ("end", "start")
                             for kind in ("service", "timer")]
    for edge, at in (("start", "08:55"), ("end", "09:40")):
        assert f"OnCalendar=Mon,Tue,Wed,Thu,Fri *-*-* {at}:00 America/New_York\n" in units[
            f"ibgw-window-paper-1-{edge}.timer"]
    start = units["ibgw-window-paper-1-start.service"]
    assert "Environment=PYTHONPATH=/opt/ibgw/paper/lib\n" in start
    assert ("ExecStart=/usr/bin/python3 -m ibgw_on_host.gateway_start /opt/ibgw/paper/start.json --until 09:40 "
            "--time-zone America/New_York\n") in start
    assert "ExecStart=/opt/ibgw/paper/stop\n" in units["ibgw-window-paper-1-end.service"]


def test_a_window_keeps_its_wall_clock_time_when_daylight_saving_time_ends():
    window = session_clock.Window.parse(MORNING)
    # US daylight saving time ended on Sunday 2026-11-01: Friday's window opens at 12:55 UTC, Monday's at 13:55.
    spans = window.spans(datetime(2026, 10, 30, 12, 0, tzinfo=UTC), days=5)
    assert [(start.astimezone(UTC).strftime("%a %H:%M"), end.astimezone(UTC).strftime("%H:%M"))
            for start, end in spans] == [("Fri 12:55", "13:40"), ("Mon 13:55", "14:40"), ("Tue 13:55", "14:40")]


def test_the_dead_man_switch_of_a_window_lasts_until_its_end_across_the_change():
    # The clocks go back at 02:00 on the morning of the change: from 23:00 the evening before, 09:40 is 11h40m away.
    tz = session_clock.zone("America/New_York")
    before = datetime(2026, 10, 31, 23, 0, tzinfo=tz)
    end = session_clock.next_daily(before, session_clock.clock("09:40"), tz)
    assert (end - before).total_seconds() == 11 * 3600 + 40 * 60


@pytest.mark.parametrize(("now", "expected"), [
    (datetime(2026, 12, 7, 14, 0, tzinfo=UTC), ["paper"]),    # Monday 09:00 New York: inside 08:55-09:40
    (datetime(2026, 12, 7, 14, 40, tzinfo=UTC), []),          # 09:40: the window's end
    (datetime(2026, 12, 5, 14, 0, tzinfo=UTC), []),           # Saturday
])
def test_deploy_names_the_instances_whose_window_is_open_now(plugin, now, expected):
    instances = [{"name": "paper", "windows": [MORNING]}, {"name": "live", "windows": []}]
    assert plugin.open_windows(instances, now) == expected
