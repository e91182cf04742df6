"""The weekly live sign-in from the VM (ib_gateway_signin_schedule.on_vm): plain site.yml installs its timer, the
timer's calendar fires it with no controller command, the stand-in plays IBKR Mobile's 2FA, and each sign-in sends
exactly one push (IBC's "Second Factor Authentication initiated"), approved or not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ibgw_ops.on_host import session_clock
from tests.support.lab import Lab, recap_changed, wait_for
from tests.support.layout import settings_filters

pytestmark = [pytest.mark.integration, pytest.mark.restarts]
PAPER = {"name": "paper", "mode": "paper"}
SUNDAY = {"day": "sun", "time": "17:00", "time_zone": "America/New_York", "on_vm": True}
PUSH = "IBC: Second Factor Authentication initiated"
SERVICE = "ibgw-signin-live.service"
DROP_IN = "/etc/systemd/system/ibgw-signin-live.timer.d"


def settings(knobs: dict[str, str], schedule: dict[str, object] = SUNDAY, **more: object) -> dict[str, object]:
    """Live with the stand-in's knobs (short delays), paper, the VM's sign-in on; the sign-in waits 20 s at most."""
    return {"ib_gateway_instances": [{"name": "live", "mode": "live", "extra_env": knobs}, PAPER],
            "ib_gateway_signin_schedule": schedule, "ib_gateway_ready_timeout": 20, **more}


def pushes(lab: Lab) -> int:
    return int(lab.ssh(f"docker logs ibgw-live 2>&1 | grep -c '{PUSH}' || true").strip())


def journal(lab: Lab, since: datetime) -> str:
    """The sign-in service's journal since ``since`` (an earlier test's runs left theirs)."""
    return lab.ssh(f"journalctl -u {SERVICE} --since @{int(since.timestamp())} --no-pager -o cat")


def test_the_timer_signs_live_in_at_its_calendar_time_with_one_approved_push(deployed: Lab):
    began = datetime.now(UTC)
    deployed.host_settings(settings({"STANDIN_START_DELAY": "0.5", "STANDIN_LOGIN_DELAY": "1"}))
    try:
        deployed.converge()  # plain ansible-playbook playbooks/site.yml
        assert recap_changed(deployed.converge().stdout) == 0, "a second converge changes nothing"
        timers = deployed.ssh("systemctl list-timers --all --no-legend 'ibgw-signin-*'")
        assert "ibgw-signin-live.timer" in timers and "ibgw-signin-paper" not in timers, timers
        # systemd reads the role's calendar as the schedule means it: the next Sunday 17:00 in New York.
        shown = deployed.ssh("systemctl show -p NextElapseUSecRealtime --value ibgw-signin-live.timer").strip()
        planned = session_clock.next_weekly(datetime.now(UTC), "sun", session_clock.clock("17:00"),
                                            ZoneInfo("America/New_York"))
        assert datetime.strptime(shown, "%a %Y-%m-%d %H:%M:%S %Z").replace(tzinfo=UTC) == planned, shown
        # The same timer at a minute ahead on the clocks of another zone than the VM's (UTC): a drop-in moves only its
        # calendar, written by the role's own function; from here on only the VM acts.
        fires = (datetime.now(UTC) + timedelta(seconds=80)).replace(second=0, microsecond=0)
        local = fires.astimezone(ZoneInfo("Asia/Tokyo"))
        expression = settings_filters().calendar(local.strftime("%a"), local.strftime("%H:%M"), "Asia/Tokyo")
        deployed.ssh(f"mkdir -p {DROP_IN} && printf '[Timer]\\nOnCalendar=\\nOnCalendar={expression}\\n' "
                     f">{DROP_IN}/soon.conf && systemctl daemon-reload && systemctl restart ibgw-signin-live.timer")
        wait_for("the sign-in", lambda: "signed in: live" in journal(deployed, began),
                 timeout=(fires - datetime.now(UTC)).total_seconds() + 90)
        said = journal(deployed, began)
        assert ("IBGW_ALERT 2fa_needed live the VM's weekly sign-in started: approve the IBKR Mobile notification "
                "now, by ") in said, said
        internal = deployed.host_vars()["ibgw_internal_ip"]
        assert f"ready: live on {internal}:4001 (accounts U1234567)" in said
        assert pushes(deployed) == 1
        assert deployed.container_state("live") == "running"
        row = deployed.status_rows("live")["live"]
        signed_in = datetime.fromisoformat(row["signed_in_at"])
        assert fires <= signed_in <= datetime.now(UTC), row
        assert f"the session lasts until {session_clock.good_until(signed_in).isoformat()}" in said
    finally:
        deployed.ssh(f"rm -rf {DROP_IN} && systemctl daemon-reload")
        deployed.cli("down", "live")
        deployed.host_settings(None)


def test_a_push_not_approved_by_the_deadline_stops_live_after_exactly_one_push(deployed: Lab):
    began = datetime.now(UTC)
    deployed.use_settings(settings({"STANDIN_NEVER_LOGIN": "yes", "STANDIN_TWOFA_TIMEOUT": "3",
                                    "STANDIN_START_DELAY": "0.5"}))
    try:
        deployed.ssh(f"systemctl start {SERVICE} || true")  # the timer's service, at once
        said = journal(deployed, began)
        assert "IBGW_ALERT 2fa_needed live the VM's weekly sign-in started" in said, said
        assert ("IBGW_ALERT 2fa_needed live the VM's weekly sign-in failed: 2FA not approved in time: not ready "
                "within 20 s") in said, said
        assert "; live is stopped again" in said
        assert deployed.container_state("live") == "exited"
        assert pushes(deployed) == 1, "IBC must not send a second push"
        assert deployed.ssh("test -e /opt/ibgw/live/signed-in-at && echo kept || echo none").strip() == "none"
        assert deployed.ssh(f"systemctl is-failed {SERVICE} || true").strip() == "failed"
    finally:
        deployed.use_settings(None)
    assert deployed.ssh("ls /etc/systemd/system | grep ibgw-signin || true").strip() == "", "deploy removes the units"


def test_a_sign_in_before_the_weekly_reset_is_refused_at_deploy_before_any_change(deployed: Lab):
    before = deployed.configuration()
    deployed.host_settings(settings({}, {**SUNDAY, "day": "sat"}))
    try:
        result = deployed.cli("deploy", check=False)
    finally:
        deployed.host_settings(None)
    assert result.returncode == 2, result.stderr
    assert "ib_gateway_signin_schedule: with on_vm true the VM signs in at sat 17:00 America/New_York, which must " \
           "come after IBKR's weekly reset (sun 01:00 America/New_York)" in result.stderr
    assert deployed.configuration() == before
