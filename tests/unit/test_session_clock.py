"""The live session's calendar and the protected window, at fixed moments (DST and the Sunday reset included)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from ibgw_ops.on_host import session_clock
from ibgw_ops.on_host.session_clock import LiveSession, Window
from tests.support.layout import role_defaults

NY = ZoneInfo("America/New_York")
# The role's default windows: IBKR's North American nightly maintenance and weekly reset.
MAINTENANCE = role_defaults("ib_gateway")["ib_gateway_ibkr_maintenance"]
SCHEDULE = {"day": "sun", "time": "17:00", "time_zone": "America/New_York"}
MARKET = {"time_zone": "America/New_York", "days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:30",
          "end": "16:00"}


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)


@pytest.mark.parametrize(("after", "expected"), [
    (ny(2026, 11, 25, 12, 0), ny(2026, 11, 29, 1, 0)),   # Wednesday -> Sunday
    (ny(2026, 11, 29, 0, 59), ny(2026, 11, 29, 1, 0)),   # Sunday just before the reset
    (ny(2026, 11, 29, 1, 0), ny(2026, 12, 6, 1, 0)),     # at the reset: the next one
    (ny(2026, 3, 7, 12, 0), ny(2026, 3, 8, 1, 0)),       # the Sunday clocks spring forward (at 02:00)
])
def test_the_next_weekly_reset_is_sunday_01_00_new_york_time(after, expected):
    assert session_clock.next_reset(after) == expected
    assert session_clock.next_reset(after.astimezone(UTC)) == expected


def test_a_sunday_evening_sign_in_lasts_until_the_next_reset_and_reaches_the_next_planned_sign_in():
    signed_in = ny(2026, 11, 22, 17, 5)
    session = LiveSession.of(signed_in, ny(2026, 11, 25, 12, 0), SCHEDULE)
    assert session.limit == signed_in + timedelta(days=7)
    assert session.good_until == ny(2026, 11, 29, 1, 0)
    assert session.next_signin == ny(2026, 11, 29, 17, 0)
    assert session.lasts()


def test_a_sign_in_before_the_sunday_reset_does_not_last():
    session = LiveSession.of(ny(2026, 11, 29, 0, 30), ny(2026, 11, 29, 9, 0), SCHEDULE)
    assert session.good_until == ny(2026, 11, 29, 1, 0)
    assert not session.lasts()


def test_a_session_left_over_from_last_week_does_not_last():
    session = LiveSession.of(ny(2026, 11, 15, 17, 0), ny(2026, 11, 24, 10, 0), SCHEDULE)
    assert not session.lasts()


def test_a_planned_sign_in_on_monday_morning_needs_the_session_only_until_the_reset():
    monday = {"day": "mon", "time": "07:00", "time_zone": "Europe/London"}
    session = LiveSession.of(ny(2026, 11, 23, 8, 0), ny(2026, 11, 26, 8, 0), monday)
    assert session.needed_until == ny(2026, 11, 29, 1, 0)
    assert session.lasts()


@pytest.mark.parametrize(("moment", "inside"), [
    (ny(2026, 11, 25, 9, 29), False),
    (ny(2026, 11, 25, 9, 30), True),
    (ny(2026, 11, 25, 15, 59), True),
    (ny(2026, 11, 25, 16, 0), False),
    (ny(2026, 11, 28, 12, 0), False),   # Saturday
])
def test_the_market_hours_window(moment, inside):
    assert Window.parse(MARKET).contains(moment) is inside
    assert Window.parse(MARKET).contains(moment.astimezone(ZoneInfo("Asia/Tokyo"))) is inside


def test_a_window_that_spans_midnight_belongs_to_the_day_it_starts():
    night = Window.parse({"time_zone": "UTC", "days": ["fri"], "start": "22:00", "end": "02:00"})
    assert night.contains(datetime(2026, 11, 27, 23, 0, tzinfo=UTC))      # Friday night
    assert night.contains(datetime(2026, 11, 28, 1, 59, tzinfo=UTC))      # Saturday early
    assert not night.contains(datetime(2026, 11, 28, 23, 0, tzinfo=UTC))  # Saturday night
    assert not night.contains(datetime(2026, 11, 27, 1, 0, tzinfo=UTC))   # Friday early (Thursday's night)


@pytest.mark.parametrize(("change", "words"), [
    ({"time_zone": "Mars/Olympus"}, ["time_zone:", "not a known IANA time zone"]),
    ({"time_zone": "../etc/passwd"}, ["time_zone:", "not an IANA time zone name"]),
    ({"start": "9:30"}, ["start:", "24-hour time HH:MM"]),
    ({"end": "24:00"}, ["end:", "24-hour time HH:MM"]),
    ({"days": ["monday"]}, ["days:", "allowed: mon, tue"]),
    ({"days": "mon"}, ["days:", "not a list of days"]),
    ({"days": []}, ["days:", "not a list of days"]),
])
def test_a_bad_window_names_its_key_and_the_allowed_values(change, words):
    with pytest.raises(ValueError, match=words[0]) as raised:
        Window.parse({**MARKET, **change})
    for word in words:
        assert word in str(raised.value)


def test_a_window_without_a_key_names_the_key():
    with pytest.raises(ValueError, match="end: missing"):
        Window.parse({key: value for key, value in MARKET.items() if key != "end"})


def test_last_weekly_is_the_latest_occurrence_at_or_before_now_across_daylight_saving_time():
    # Sunday 2026-03-08, the day New York moves to EDT: 17:00 local is 21:00 UTC (a week before, 22:00 UTC).
    planned = datetime(2026, 3, 8, 21, 0, tzinfo=UTC)
    assert session_clock.last_weekly(planned, "sun", time(17, 0), NY) == planned
    earlier = session_clock.last_weekly(planned - timedelta(seconds=1), "sun", time(17, 0), NY)
    assert earlier == datetime(2026, 3, 1, 22, 0, tzinfo=UTC)
    assert session_clock.last_reset(datetime(2026, 3, 11, 12, 0, tzinfo=UTC)) == datetime(2026, 3, 8, 6, 0, tzinfo=UTC)


def test_a_sign_in_before_the_weekly_reset_warns_at_once():
    """The case seen: signed in Saturday evening, good until 06:00 UTC, next planned sign-in 22:00 UTC."""
    signed_in = ny(2026, 11, 28, 17, 0)
    session = LiveSession.of(signed_in, signed_in + timedelta(minutes=5), SCHEDULE)
    assert session.good_until.astimezone(UTC) == datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    assert session.next_signin.astimezone(UTC) == datetime(2026, 11, 29, 22, 0, tzinfo=UTC)
    assert not session.lasts()


@pytest.mark.parametrize(("now", "lasts"), [
    (ny(2026, 11, 23, 9, 0), True),      # Monday
    (ny(2026, 11, 28, 0, 59), True),     # a day and a minute before the reset
    (ny(2026, 11, 28, 1, 1), False),     # less than a day before the reset
    (ny(2026, 11, 28, 23, 0), False),    # the hours just before the reset
    (ny(2026, 11, 29, 0, 59), False),
    (ny(2026, 11, 29, 1, 0), False),     # at the reset
    (ny(2026, 11, 29, 16, 59), False),   # between the reset and the planned sign-in
    (ny(2026, 11, 29, 18, 0), False),    # the planned sign-in missed
])
def test_a_week_s_session_warns_from_a_day_before_the_reset_until_the_next_sign_in(now, lasts):
    assert LiveSession.of(ny(2026, 11, 22, 17, 5), now, SCHEDULE).lasts() is lasts


def test_the_next_planned_sign_in_starts_a_session_that_lasts():
    assert LiveSession.of(ny(2026, 11, 29, 17, 2), ny(2026, 11, 29, 17, 3), SCHEDULE).lasts()


def test_a_session_that_reaches_the_next_planned_sign_in_never_warns():
    saturday = {"day": "sat", "time": "20:00", "time_zone": "America/New_York"}
    assert LiveSession.of(ny(2026, 11, 22, 17, 5), ny(2026, 11, 28, 19, 0), saturday).lasts()


@pytest.mark.parametrize(("moment", "expected"), [
    (datetime(2026, 3, 5, 4, 44, tzinfo=UTC), None),  # Wednesday 23:44 in New York
    (datetime(2026, 3, 5, 4, 45, tzinfo=UTC), ("IBKR's nightly maintenance", datetime(2026, 3, 5, 5, 15, tzinfo=UTC))),
    (datetime(2026, 3, 5, 5, 14, tzinfo=UTC), ("IBKR's nightly maintenance", datetime(2026, 3, 5, 5, 15, tzinfo=UTC))),
    (datetime(2026, 3, 5, 5, 15, tzinfo=UTC), None),
    (datetime(2026, 7, 5, 4, 50, tzinfo=UTC), ("IBKR's weekly reset", datetime(2026, 7, 5, 5, 45, tzinfo=UTC))),
    (datetime(2026, 7, 5, 5, 44, tzinfo=UTC), ("IBKR's weekly reset", datetime(2026, 7, 5, 5, 45, tzinfo=UTC))),
    (datetime(2026, 7, 5, 5, 45, tzinfo=UTC), None),
])
def test_ibkr_s_maintenance_windows_in_new_york_time_across_daylight_saving(moment, expected):
    assert session_clock.maintenance(moment, MAINTENANCE) == expected


def test_a_region_s_own_maintenance_window_replaces_new_york_s():
    hong_kong = [{"name": "IBKR's Asian servers' maintenance", "time_zone": "Asia/Hong_Kong",
                  "days": ["mon", "tue", "wed", "thu", "fri"], "start": "16:30", "end": "17:30"}]
    tuesday = datetime(2026, 3, 3, 8, 40, tzinfo=UTC)  # 16:40 in Hong Kong
    assert session_clock.maintenance(tuesday, hong_kong) == (hong_kong[0]["name"],
                                                             datetime(2026, 3, 3, 9, 30, tzinfo=UTC))
    assert session_clock.maintenance(tuesday + timedelta(days=4), hong_kong) is None, "Saturday"
    assert session_clock.maintenance(datetime(2026, 3, 5, 4, 50, tzinfo=UTC), hong_kong) is None
    assert session_clock.maintenance(datetime(2026, 3, 5, 4, 50, tzinfo=UTC), []) is None
