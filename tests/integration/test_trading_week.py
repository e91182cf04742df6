"""A trading week on the roles VM, compressed: each day's events driven at once instead of at their hours, played by
the stand-in in IBC's and ibcstart.sh's words, and named (or not) by the VM's own watchdog and sign-in timer through
the webhook, with no controller command between an event and its alert.

The week, in order (each test one stretch of it; later ones build on earlier ones):
- Sunday: the weekly sign-in timer fires (a drop-in moves its calendar to the next minute), one push, approved;
- Monday and Tuesday: the daily restarts (IBC ``RESTART``, RestartTask: the gateway's own restart, as at its
  auto-restart time) resume the session; Tuesday night, a disconnect shorter than the grace;
- Wednesday: a daily restart that cannot resume (IBC issue 290), whose one push nobody approves; the operator's
  ``live-signin`` afterwards;
- Thursday: the same IBKR user logs in elsewhere and live keeps its session (IBC's scenario 5); then IBKR's side
  drops live outside any maintenance window for longer than the grace;
- Friday: the VM reboots, and live comes back by Docker's restart policy with one push, approved;
- Sunday's reset: an outage inside the weekly reset's window (moved to now in the inventory, as a region's own
  windows are set) that ends within it, then one that ends in the Gateway's "Connection to server failed" dialog:
  IBC's cold restart, a full login, one push that nobody approves at that hour;
- the next Sunday: the sign-in timer fires again, one push, approved.

Each stretch asserts the alerts it brought (the incidents exactly, normal events none), each within 60 s of the line
or the moment that shows it, the number of 2FA pushes, and ``status --json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from ibgw_ops.on_host import gateway_log, session_clock
from tests.support.lab import Lab, wait_for
from tests.support.layout import settings_filters
from tests.support.webhook import Receiver

pytestmark = [pytest.mark.integration, pytest.mark.scheduled]
INTERVAL = 3
GRACE = 10
STATE = "/var/lib/ibgw-ops"
KNOBS = "/opt/ibgw/live/settings/standin-knobs"
TIMER = "ibgw-signin-live.timer"
DROP_IN = f"/etc/systemd/system/{TIMER}.d"
PUSH = "Second Factor Authentication initiated"
SETTINGS = {
    "ib_gateway_instances": [
        {"name": "live", "mode": "live", "read_only_api": "no",
         "extra_env": {"STANDIN_START_DELAY": "0.5", "STANDIN_LOGIN_DELAY": "1", "STANDIN_RECONNECT_DELAY": "2",
                       "STANDIN_TWOFA_TIMEOUT": "8"}},
        {"name": "paper", "mode": "paper"}],
    "ib_gateway_signin_schedule": {"day": "sun", "time": "17:00", "time_zone": "America/New_York", "on_vm": True},
    # Live is signed in and restarted on whatever day this runs.
    "ib_gateway_protected_window": {},
    "ib_gateway_ready_timeout": 30,
    "ib_gateway_watchdog_interval": INTERVAL, "ib_gateway_watchdog_not_ready_ticks": 3,
    "ib_gateway_disconnect_grace": GRACE, "ib_gateway_session_expiring_before": 0,
    "ib_gateway_alert_timeout": 3,
}


@dataclass
class Week:
    """The VM, the webhook, and how many alerts had arrived when the current stretch began."""

    lab: Lab
    receiver: Receiver
    seen: int = 0

    def begin(self) -> datetime:
        """A new stretch: its alerts are the ones that arrive from now on."""
        self.seen = len(self.receiver.bodies)
        return datetime.now(UTC)

    def alerts(self) -> list[dict]:
        return [body for body in self.receiver.bodies[self.seen:] if body["instance"] == "live"]

    def kinds(self) -> list[str]:
        return sorted(body["kind"] for body in self.alerts())

    def alert(self, kind: str) -> dict:
        (found,) = [body for body in self.alerts() if body["kind"] == kind]
        return found

    def wait(self, what: str, kinds: list[str], timeout: float, settle: float = 2 * INTERVAL + 2) -> None:
        """Until exactly ``kinds`` arrived in this stretch, then a few ticks more in which nothing else does."""
        try:
            wait_for(what, lambda: self.kinds() == sorted(kinds), timeout, 1)
            self.lab.ssh(f"sleep {settle}")
            assert self.kinds() == sorted(kinds)
        except AssertionError as failed:
            seen = self.lab.ssh("journalctl -u 'ibgw-watchdog@live' -u 'ibgw-signin-live' -o cat --since '-10min' "
                                "| grep -v '^Start\\|^Finish' | tail -30; docker logs --timestamps ibgw-live 2>&1 "
                                "| grep -v socat | tail -30")
            raise AssertionError(f"{failed}\nthis stretch: {json.dumps(self.alerts(), indent=1)}\n{seen}") from None

    def logged(self, text: str) -> list[datetime]:
        """When the live container's log showed ``text`` (Docker's stamps)."""
        stamped = self.lab.ssh(f"docker logs --timestamps ibgw-live 2>&1 | grep -F {json.dumps(text)} || true")
        return [gateway_log.moment(line.split(" ")[0]) for line in stamped.splitlines()]

    def pushes(self) -> int:
        return len(self.logged(PUSH))

    def within_a_minute(self, kind: str, shown: datetime) -> None:
        """The alert reached the webhook within 60 s of the line (or the moment) that showed its incident.

        (Its own ``time`` is its tick's start, which may come a second before a line that tick read.)
        """
        arrived = self.receiver.arrival(self.alert(kind))
        assert timedelta(0) <= arrived - shown < timedelta(seconds=60), (kind, shown, arrived)

    def knobs(self, text: str) -> None:
        """IBKR's answers from the next Java start (or the next outage) on (the stand-in's knobs, docs/lab.md)."""
        self.lab.ssh(f"printf '{text}' > {KNOBS}")

    def signal(self, name: str) -> datetime:
        """USR1: the same user logs in elsewhere; USR2: IBKR's side drops the gateway (docs/lab.md)."""
        sent = datetime.now(UTC)
        self.lab.ssh(f"docker exec ibgw-live pkill -{name} -f standin_gateway.py")
        return sent

    def restart(self) -> None:
        """IBC RESTART on the VM's loopback, as the gateway restarts itself daily (no ibgw-ops verb involved)."""
        self.lab.ssh("python3 /opt/ibgw/live/ibc-command ibgw-live RESTART 7462 >/dev/null")

    def signin_timer_fires(self) -> datetime:
        """Move only the sign-in timer's calendar to the next minute (the role's own calendar expression)."""
        fires = (datetime.now(UTC) + timedelta(seconds=70)).replace(second=0, microsecond=0)
        expression = settings_filters().calendar(fires.strftime("%a"), fires.strftime("%H:%M"), "UTC")
        self.lab.ssh(f"mkdir -p {DROP_IN} && printf '[Timer]\\nOnCalendar=\\nOnCalendar={expression}\\n' "
                     f">{DROP_IN}/soon.conf && systemctl daemon-reload && systemctl restart {TIMER}")
        return fires

    def windows_now(self, name: str, minutes: int) -> None:
        """IBKR's maintenance windows: one named ``name`` from a minute ago to ``minutes`` from now (deploy)."""
        start = datetime.now(UTC) - timedelta(minutes=1)
        end = start + timedelta(minutes=minutes + 1)
        window = {"name": name, "time_zone": "UTC", "days": [start.strftime("%a").lower()],
                  "start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}
        self.lab.use_settings({**self.settings(), "ib_gateway_ibkr_maintenance": [window]})

    def settings(self) -> dict:
        return {**SETTINGS, "ib_gateway_alert_webhook": self.receiver.url}

    def row(self) -> dict:
        return self.lab.status_rows("live")["live"]


@pytest.fixture(scope="module")
def week(deployed: Lab, receiver: Receiver) -> Iterator[Week]:
    """The roles VM with live's VM sign-in on, the watchdog every few seconds, live stopped and no old records."""
    deployed.ssh(f"systemctl stop 'ibgw-watchdog@*.timer'; rm -rf {STATE}/watchdog {STATE}/logins "
                 "/opt/ibgw/live/signed-in-at")
    played = Week(deployed, receiver)
    deployed.use_settings(played.settings())
    yield played
    deployed.ssh(f"rm -rf {DROP_IN} {KNOBS}; systemctl daemon-reload")
    deployed.cli("down", "all", check=False)
    deployed.use_settings(None)
    deployed.ssh(f"rm -rf {STATE}/watchdog {STATE}/logins; systemctl reset-failed 'ibgw-*' || true")


def test_sunday_the_vm_s_sign_in_timer_signs_live_in_with_one_approved_push(week):
    began = week.begin()
    fires = week.signin_timer_fires()
    week.wait("the sign-in's alert", ["2fa_needed"], (fires - began).total_seconds() + 60)
    assert "the VM's weekly sign-in started: approve the IBKR Mobile notification now, by " in \
        week.alert("2fa_needed")["detail"]
    wait_for("live ready", lambda: week.row().get("probe") == "ready", 60)
    assert week.pushes() == 1
    row = week.row()
    assert fires <= datetime.fromisoformat(row["signed_in_at"]) <= datetime.now(UTC), row
    assert row["last_login"]["kind"] == "full" and row["last_login"]["source"] == "the VM's weekly sign-in", row
    assert row["good_until"], row


def test_monday_and_tuesday_the_daily_restarts_resume_and_a_short_disconnect_pages_nobody(week):
    signed_in = week.row()["signed_in_at"]
    week.begin()
    for day in ("monday", "tuesday"):
        restarted = len(week.logged("autorestart file found at"))
        week.restart()
        wait_for(f"{day}'s restart", lambda n=restarted: len(week.logged("autorestart file found at")) == n + 1,
                 90)
        wait_for(f"{day}'s resumed login", lambda: week.row()["last_login"]["kind"] == "resumed"
                 and week.row().get("probe") == "ready", 30)
    week.knobs(f"STANDIN_OUTAGE={GRACE // 2}\n")
    week.signal("USR2")
    week.wait("Tuesday night", [], GRACE + 5, settle=GRACE // 2 + 2 * INTERVAL)
    assert week.pushes() == 1, "no push since Sunday's"
    row = week.row()
    assert row["signed_in_at"] == signed_in and row["good_until"], row
    assert row["probe"] == "ready", row


def test_wednesday_a_restart_that_cannot_resume_is_named_and_its_one_push_left_unapproved(week):
    week.begin()
    week.knobs("STANDIN_RESUME=no\nSTANDIN_NEVER_LOGIN=yes\n")
    week.restart()
    week.wait("the lost session", ["2fa_needed", "container_exited", "not_ready", "restart_full_login"], 150)
    wait_for("IBKR's 2FA dialog timing out", lambda: week.logged("Re-login after second factor authentication "
                                                                 "timeout not required") != [], 30)
    week.lab.ssh(f"sleep {3 * INTERVAL}")
    assert week.kinds() == ["2fa_needed", "container_exited", "not_ready", "restart_full_login"]
    assert week.pushes() == 2, "one push for the lost session, none after IBKR's dialog timed out"
    (push,) = week.logged(PUSH)[1:]
    week.within_a_minute("2fa_needed", push)
    week.within_a_minute("restart_full_login", week.logged("autorestart file not found")[-1])
    assert "approve it in IBKR Mobile by " in week.alert("2fa_needed")["detail"]
    row = week.row()
    assert not row.get("good_until") and not row.get("signed_in_at"), "the weekly session has ended"
    assert row["container"] == "running" and row["probe"] != "ready", row
    # The operator signs in again from the controller, and approves.
    week.knobs("")
    week.begin()
    week.lab.cli("live-signin", "live", "--timeout", "60")
    # Its tidy stop ends not_ready quietly (the operator acted), and its own login is accounted for: no alert.
    week.wait("live back", [], 5)
    row = week.row()
    assert row["last_login"]["source"] == "a start by ibgw-ops" and row["good_until"], row


def test_thursday_a_login_elsewhere_is_named_and_a_long_disconnect_outside_the_windows_is_alerted(week):
    signed_in = week.row()["signed_in_at"]
    pushes = week.pushes()
    week.begin()
    week.signal("USR1")
    week.wait("the login elsewhere", ["competing_login"], 60, settle=GRACE)
    week.within_a_minute("competing_login", week.logged("(scenario 5)")[-1])
    week.begin()
    week.knobs(f"STANDIN_OUTAGE={GRACE + 4 * INTERVAL}\n")
    dropped = week.signal("USR2")
    week.wait("the disconnect and its end", ["disconnected", "recovered"], GRACE + 8 * INTERVAL + 30)
    week.within_a_minute("disconnected", dropped + timedelta(seconds=GRACE))
    assert "it began during" not in week.alert("disconnected")["detail"]
    assert week.pushes() == pushes
    assert week.row()["signed_in_at"] == signed_in


def test_friday_a_reboot_is_named_with_its_time_and_its_one_push_is_approved(week):
    week.begin()
    booted = datetime.now(UTC)
    week.lab.reboot()
    week.wait("the unplanned start", ["2fa_needed", "unplanned_start"], 120)
    assert "Docker's restart policy, after the machine booted at" in week.alert("unplanned_start")["detail"]
    (push,) = [moment for moment in week.logged(PUSH) if moment >= booted]
    week.within_a_minute("2fa_needed", push)
    row = week.row()
    assert "after the machine booted" in row["last_login"]["source"], row
    assert datetime.fromisoformat(row["signed_in_at"]) >= booted.replace(second=0, microsecond=0), row
    assert row["good_until"], row


def test_sunday_s_reset_is_quiet_inside_its_window_and_a_failed_reconnect_is_named_with_one_push(week):
    week.windows_now("IBKR's weekly reset", 6)
    week.begin()
    week.knobs(f"STANDIN_OUTAGE={GRACE + 3 * INTERVAL}\n")
    week.signal("USR2")
    week.wait("the reset's outage", [], GRACE + 3 * INTERVAL + 10, settle=GRACE + 3 * INTERVAL + 5)
    assert week.row()["probe"] == "ready", "IBKR came back within the window"
    pushes = week.pushes()
    week.knobs("STANDIN_OUTAGE=2\nSTANDIN_OUTAGE_END=failed\nSTANDIN_NEVER_LOGIN=yes\n")
    dropped = week.signal("USR2")
    week.wait("the failed reconnect", ["2fa_needed", "ibkr_reset", "not_ready", "restart_full_login"], 90)
    week.within_a_minute("ibkr_reset", week.logged("Connection to server failed")[-1])
    week.within_a_minute("2fa_needed", week.logged(PUSH)[-1])
    assert "after IBKR's server dropped the gateway" in week.alert("restart_full_login")["detail"]
    wait_for("IBKR's 2FA dialog timing out", lambda: any(moment > dropped for moment in week.logged(
        "Re-login after second factor authentication timeout not required")), 30)
    week.lab.ssh(f"sleep {3 * INTERVAL}")
    assert week.pushes() == pushes + 1
    assert not week.row().get("good_until"), "the session ended with the reset"


def test_the_next_sunday_the_timer_signs_live_in_again_with_one_approved_push(week):
    week.knobs("")
    began = week.begin()
    fires = week.signin_timer_fires()
    week.wait("the sign-in's alert", ["2fa_needed"], (fires - began).total_seconds() + 60)
    wait_for("live ready", lambda: week.row().get("probe") == "ready", 60)
    assert week.pushes() == 1, "a new container, one push"
    row = week.row()
    signed_in = datetime.fromisoformat(row["signed_in_at"])
    assert fires <= signed_in and row["last_login"]["source"] == "the VM's weekly sign-in", row
    assert datetime.fromisoformat(row["good_until"]) == session_clock.good_until(signed_in), row
