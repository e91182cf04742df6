"""Paper windows on the VM: systemd timers open and close paper with no controller command after deploy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ibgw_ops.on_host import session_clock
from tests.support.lab import Lab, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.scheduled]
LIVE = {"name": "live", "mode": "live"}


def window_soon(minutes: int = 1, start: timedelta = timedelta(seconds=100)) -> tuple[dict[str, object], datetime]:
    """A window that opens at the minute at least ``start`` less 60 s away (deploy runs first), ``minutes`` long.

    In the first of a few zones where it does not cross midnight, so the test runs at any hour; it also proves that
    the timer's zone is not the VM's (UTC).
    """
    opens = (datetime.now(UTC) + start).replace(second=0, microsecond=0)
    for name in ("Europe/Zurich", "America/New_York", "Asia/Tokyo"):
        start, end = opens.astimezone(ZoneInfo(name)), (opens + timedelta(minutes=minutes)).astimezone(ZoneInfo(name))
        if start.date() == end.date():
            return ({"days": [session_clock.DAYS[start.weekday()]], "start": start.strftime("%H:%M"),
                     "end": end.strftime("%H:%M"), "time_zone": name}, opens)
    raise AssertionError("unreachable: the three zones are hours apart")


def test_a_window_starts_paper_and_stops_it_at_its_end_with_no_controller_command(deployed: Lab):
    # A window an hour away first: that deploy does the slow part, so the next one, which only moves the window's
    # timers, ends well before the window it sets opens, even on a loaded machine.
    later, _ = window_soon(start=timedelta(hours=1))
    deployed.use_settings({"ib_gateway_instances": [LIVE, {"name": "paper", "mode": "paper", "windows": [later]}]})
    window, opens = window_soon()
    deployed.use_settings({"ib_gateway_instances": [LIVE, {"name": "paper", "mode": "paper", "windows": [window]}]})
    try:
        timers = deployed.ssh("systemctl list-timers --all --no-legend 'ibgw-window-*'")
        assert "ibgw-window-paper-1-start.timer" in timers and "ibgw-window-paper-1-end.timer" in timers, timers
        assert deployed.container_state("paper") in ("", "exited")
        assert f"paper on {deployed.name}: next window " in deployed.cli("status", "paper").stdout
        # From here on, only the VM acts; the test only watches.
        wait_for("paper running", lambda: deployed.container_state("paper") == "running",
                 timeout=(opens - datetime.now(UTC)).total_seconds() + 60)
        wait_for("paper ready", lambda: deployed.status_rows("paper")["paper"]["probe"] == "ready", timeout=90)
        ready = datetime.now(UTC)
        print(f"paper ready {(ready - opens).total_seconds():.0f} s after the window opened")
        journal = deployed.ssh("journalctl -u ibgw-window-paper-1-start.service --no-pager -o cat")
        internal = deployed.host_vars()["ibgw_internal_ip"]
        assert f"ready: paper on {internal}:4002 (accounts DU1234567)" in journal, journal
        assert "ibgw-deadman-paper" in deployed.deadman_timers()
        wait_for("paper stopped", lambda: deployed.container_state("paper") == "exited",
                 timeout=(opens + timedelta(minutes=1) - datetime.now(UTC)).total_seconds() + 60)
        print(f"paper stopped {(datetime.now(UTC) - opens).total_seconds() - 60:.0f} s after the window closed")
        # The dead-man switch was armed until the window's end plus 1 s: on a slow machine it fires while the end's
        # stop still holds the lock, and its own stop then finds paper stopped. Either way none is left armed.
        wait_for("no dead-man switch left", lambda: deployed.deadman_timers() == "", timeout=60)
    finally:
        deployed.use_settings(None)
    assert deployed.ssh("ls /etc/systemd/system | grep ibgw-window || true").strip() == ""


def test_a_bad_window_is_refused_before_any_change(deployed: Lab):
    before = deployed.configuration()
    deployed.host_settings({"ib_gateway_instances": [LIVE, {"name": "paper", "mode": "paper", "windows": [
        {"days": ["mon"], "start": "09:00", "end": "08:00", "time_zone": "America/New_York"}]}]})
    try:
        result = deployed.cli("deploy", check=False)
    finally:
        deployed.host_settings(None)
    assert result.returncode == 2, result.stderr
    assert "ib_gateway_instances[paper].windows[0].end: after start (got start 09:00, end 08:00)" in result.stderr
    assert deployed.configuration() == before
