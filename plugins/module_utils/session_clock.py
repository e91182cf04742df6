"""The live session's calendar: IBKR's weekly reset, the 7-day limit, weekly schedules, protected and paper windows.

The CLI uses it for ``status``, the role's settings filter on the controller, and on the VM the
``ibgw_protected_window`` module and a paper window's start, so a day, a time or a window means the same everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# IBKR invalidates session tokens every Sunday at 01:00 US/Eastern (reference/gateway.md, section 2).
RESET_ZONE = "America/New_York"
RESET_DAY = "sun"
RESET_TIME = time(1, 0)
SESSION_LIMIT = timedelta(days=7)
# How long before a session ends short of the next planned sign-in that status warns (see LiveSession.lasts).
WARN_AHEAD = timedelta(days=1)
CLOCK_PATTERN = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
T = TypeVar("T")


def zone(name: object) -> ZoneInfo:
    """A named IANA time zone; ValueError names the problem."""
    if not isinstance(name, str) or not name or name.startswith(("/", ".")) or ".." in name:
        raise ValueError(f"'{name}' is not an IANA time zone name such as America/New_York")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"'{name}' is not a known IANA time zone (such as America/New_York)") from exc


def clock(text: object) -> time:
    """``HH:MM`` on a 24-hour clock."""
    if not isinstance(text, str) or not CLOCK_PATTERN.match(text):
        raise ValueError(f"'{text}' is not a 24-hour time HH:MM such as 09:30")
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def weekday(name: object) -> int:
    """Monday 0 … Sunday 6 from ``mon`` … ``sun``."""
    if name not in DAYS:
        raise ValueError(f"'{name}' is not a day (allowed: {', '.join(DAYS)})")
    return DAYS.index(str(name))


def next_weekly(after: datetime, day: str, at: time, tz: ZoneInfo) -> datetime:
    """The first moment strictly after ``after`` that is ``day`` at ``at`` in ``tz`` (an aware datetime)."""
    local = after.astimezone(tz)
    offset = (weekday(day) - local.weekday()) % 7
    for week in (0, 1):
        candidate_day = local.date() + timedelta(days=offset + 7 * week)
        candidate = _at(candidate_day, at, tz)
        if candidate > after:
            return candidate
    raise AssertionError("unreachable: a week later is always after")


def next_reset(after: datetime) -> datetime:
    """IBKR's next weekly token reset after ``after``."""
    return next_weekly(after, RESET_DAY, RESET_TIME, ZoneInfo(RESET_ZONE))


def last_weekly(now: datetime, day: str, at: time, tz: ZoneInfo) -> datetime:
    """The latest moment at or before ``now`` that is ``day`` at ``at`` in ``tz``."""
    moment = next_weekly(now - timedelta(days=8), day, at, tz)
    while (following := next_weekly(moment, day, at, tz)) <= now:
        moment = following
    return moment


def maintenance(moment: datetime, windows: Sequence[dict[str, Any]]) -> tuple[str, datetime] | None:
    """The IBKR maintenance window ``moment`` falls in, its name and end (UTC); None outside all of them.

    ``windows`` is ``ib_gateway_ibkr_maintenance``: named windows (``{name, time_zone, days, start, end}``) in which
    IBKR's side disconnects gateways, such as its nightly maintenance and the weekly reset of its region's servers
    (reference/gateway.md, section 2).
    """
    for spec in windows:
        for start, end in Window.parse(spec).spans(moment, days=1):
            if start <= moment < end:
                return str(spec["name"]), end
    return None


def last_reset(now: datetime) -> datetime:
    """IBKR's latest weekly token reset at or before ``now``."""
    return last_weekly(now, RESET_DAY, RESET_TIME, ZoneInfo(RESET_ZONE))


@dataclass(frozen=True)
class Window:
    """Days and a daily span in a named zone; an end at or before the start spans midnight."""

    tz: ZoneInfo
    days: tuple[int, ...]
    start: time
    end: time

    @classmethod
    def parse(cls, spec: dict[str, Any]) -> Window:
        """From the inventory's ``{time_zone, days, start, end}``; ValueError names the key."""
        for key in ("time_zone", "days", "start", "end"):
            if key not in spec:
                raise ValueError(f"{key}: missing (allowed keys: time_zone, days, start, end)")
        days = spec["days"]
        if not isinstance(days, list) or not days:
            raise ValueError(f"days: {days!r} is not a list of days (allowed: {', '.join(DAYS)})")
        tz = _keyed("time_zone", zone, spec["time_zone"])
        start, end = _keyed("start", clock, spec["start"]), _keyed("end", clock, spec["end"])
        return cls(tz, tuple(_keyed("days", weekday, day) for day in days), start, end)

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` falls inside the window."""
        local = moment.astimezone(self.tz)
        now = local.time().replace(tzinfo=None)
        if self.start < self.end:
            return local.weekday() in self.days and self.start <= now < self.end
        yesterday = (local.weekday() - 1) % 7
        return (local.weekday() in self.days and now >= self.start) or (yesterday in self.days and now < self.end)


    def spans(self, after: datetime, days: int = 8) -> list[tuple[datetime, datetime]]:
        """The window's occurrences (start, end) in UTC that end after ``after``, within ``days`` days, in order.

        Each is the wall-clock times in the window's zone on that day, so daylight saving time moves them as it
        moves the clocks (as systemd's OnCalendar with a zone does). UTC, because Python compares and subtracts two
        times of one zone by their wall clocks.
        """
        first = after.astimezone(self.tz).date()
        found = []
        for offset in range(-1, days):
            day = first + timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            end_day = day + timedelta(days=1) if self.end <= self.start else day
            span = (_at(day, self.start, self.tz).astimezone(UTC), _at(end_day, self.end, self.tz).astimezone(UTC))
            if span[1] > after:
                found.append(span)
        return found


def next_daily(after: datetime, at: time, tz: ZoneInfo) -> datetime:
    """The first moment strictly after ``after`` that is ``at`` on the clocks of ``tz``, in UTC."""
    day = after.astimezone(tz).date()
    candidate = _at(day, at, tz).astimezone(UTC)
    return candidate if candidate > after else _at(day + timedelta(days=1), at, tz).astimezone(UTC)


def good_until(signed_in: datetime) -> datetime:
    """When a sign-in stops being enough: the 7-day limit or IBKR's next weekly reset, whichever comes first."""
    return min(signed_in + SESSION_LIMIT, next_reset(signed_in))


@dataclass(frozen=True)
class LiveSession:
    """How long a live sign-in lasts and whether it reaches the next planned sign-in."""

    signed_in: datetime
    next_reset: datetime
    limit: datetime
    good_until: datetime
    next_signin: datetime
    needed_until: datetime
    seen_at: datetime

    @classmethod
    def of(cls, signed_in: datetime, now: datetime, schedule: dict[str, Any]) -> LiveSession:
        """The session signed in at ``signed_in``, seen at ``now``, against the weekly ``schedule``.

        ``schedule`` is ``{day, time, time_zone}``; the session must last until the next planned sign-in, or the
        weekly reset before it.
        """
        planned = next_weekly(now, str(schedule["day"]), clock(schedule["time"]), zone(schedule["time_zone"]))
        reset = next_reset(now)
        return cls(signed_in=signed_in, next_reset=reset, limit=signed_in + SESSION_LIMIT,
                   good_until=good_until(signed_in), next_signin=planned, needed_until=min(planned, reset),
                   seen_at=now)

    def lasts(self) -> bool:
        """True when the session reaches the next planned sign-in; short of it, only while its end is over a day away.

        IBKR's weekly reset ends every session some hours before the Sunday sign-in, so the plan itself has that gap:
        a warning all week would say nothing. From a day before the session ends (so at once after a sign-in made
        less than a day before the reset) the operator hears that it ends before the next planned sign-in.
        """
        if self.good_until >= self.next_signin:
            return True
        return self.good_until >= self.needed_until and self.good_until - self.seen_at > WARN_AHEAD


def parse_utc(text: str) -> datetime | None:
    """An ISO time as written in a sign-in record; None for anything else."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _keyed(key: str, parse: Callable[[Any], T], value: object) -> T:
    """``parse(value)``, its ValueError prefixed with the key's name."""
    try:
        return parse(value)
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from exc


def _at(day: date, at: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=tz)
