"""The watchdog on the roles VM, with no controller command between the fault and the alert: a killed gateway gives
exactly one webhook POST from the VM naming the instance and the exit code, and ready again one ``recovered``; a hung
API one ``api_hung`` and one soft restart; a disconnect shorter than the grace none; a taken session one; a tidy stop
none. The webhook is a receiver on this machine, at the lab network's gateway address (what the VM sees of it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from ibgw_ops.on_host import session_clock
from tests.support.lab import Lab, recap_changed, wait_for
from tests.support.webhook import Receiver

pytestmark = [pytest.mark.integration, pytest.mark.restarts]
INTERVAL = 3
# The stand-in's rehearsal of "the same user logged in elsewhere" (docs/lab.md: the stand-in).
LOGIN_ELSEWHERE = "docker exec {container} pkill -USR1 -f standin_gateway.py"
# IBKR's side drops the gateway for STANDIN_OUTAGE seconds, then 1102 (docs/lab.md).
OUTAGE = "docker exec {container} pkill -USR2 -f standin_gateway.py"
# live's disconnect lasts this long (the stand-in's reconnect delay): several ticks, well inside the grace.
RECONNECT = 8
GRACE = 40
# The watchdog's memory of each instance's last state on the VM (the role's vars/main.yml: watchdog state_file).
STATE = "/var/lib/ibgw-ops/watchdog"
INSTANCES = [
    {"name": "live", "mode": "live", "extra_env": {"STANDIN_OUTAGE": str(RECONNECT)}},
    {"name": "paper", "mode": "paper"},
]
# Added for its own test only: "up live" starts every live-mode instance, and this one never becomes ready.
HUNG = {"name": "hung", "mode": "live", "api_port": 4110, "vnc_port": 5960, "extra_env": {"STANDIN_API_HANG": "yes"}}


@pytest.fixture(scope="module")
def watched(deployed: Lab, receiver: Receiver) -> Iterator[Lab]:
    """The roles VM with the watchdog every few seconds, alerting the receiver; every gateway stopped. What the
    default watchdog of earlier modules remembered (live's sign-in already reported due) is forgotten first."""
    deployed.ssh(f"systemctl stop 'ibgw-watchdog@*.timer'; rm -rf {STATE}")
    deployed.use_settings(settings(receiver, INSTANCES))
    yield deployed
    deployed.cli("down", "all", check=False)
    deployed.ssh(f"docker rm -f ibgw-hung; rm -rf /opt/ibgw/hung {STATE} >/dev/null")
    deployed.use_settings(None)


def settings(receiver: Receiver, instances: list[dict], **more: object) -> dict:
    return {"ib_gateway_instances": instances,
            "ib_gateway_credentials": {"hung": {"user_id": "rehearsal", "password": "rehearsal-only"}},
            "ib_gateway_watchdog_interval": INTERVAL, "ib_gateway_watchdog_not_ready_ticks": 2,
            "ib_gateway_disconnect_grace": GRACE, "ib_gateway_watchdog_soft_restart": True,
            "ib_gateway_alert_webhook": receiver.url, "ib_gateway_alert_timeout": 3, **more}


CALENDAR = ("signin_due", "session_expiring")


def kinds(receiver: Receiver, instance: str) -> list[str]:
    """The kinds POSTed for the instance, live's calendar left out (the test of signin_due counts those)."""
    return [body["kind"] for body in receiver.bodies if body["instance"] == instance and body["kind"] not in CALENDAR]


def ticks(lab: Lab, instance: str) -> int:
    """How many ticks of the instance's watchdog have finished (systemd counts its service's runs)."""
    shown = lab.ssh(f"journalctl -u ibgw-watchdog@{instance}.service -o cat | grep -c 'Finished' || true")
    return int(shown.strip() or 0)


def wait_ticks(lab: Lab, instance: str, count: int) -> None:
    """Until the instance's watchdog has ticked ``count`` more times."""
    start = ticks(lab, instance)
    wait_for(f"{count} ticks of {instance}'s watchdog", lambda: ticks(lab, instance) >= start + count,
             count * INTERVAL + 60)


def test_deploy_installs_a_timer_per_instance_and_keeps_the_webhook_out_of_units_and_settings(watched, receiver):
    timers = watched.ssh("systemctl list-timers --all --no-legend 'ibgw-watchdog@*' | awk '{print $NF}' | sort -u")
    assert set(timers.split()) == {"ibgw-watchdog@live.service", "ibgw-watchdog@paper.service"}, timers
    assert watched.ssh("stat -c '%a %U' /opt/ibgw/alert-webhook").split() == ["400", "root"]
    seen = watched.ssh("cat /etc/systemd/system/ibgw-watchdog@.* /opt/ibgw/*/watchdog.json; "
                       "systemctl show -p Environment,ExecStart ibgw-watchdog@paper.service")
    assert receiver.url not in seen and "/hook" not in seen
    again = watched.playbook("site.yml", "--tags", "ib_gateway")
    assert again.returncode == 0 and receiver.url not in again.stdout + again.stderr
    assert recap_changed(again.stdout) == 0, again.stdout


def test_live_not_signed_in_since_the_reset_gives_one_signin_due_when_the_planned_time_passed(watched, receiver):
    now = datetime.now(UTC)
    planned = session_clock.last_weekly(now, "sun", session_clock.clock("17:00"),
                                        session_clock.zone("America/New_York"))
    due = planned > session_clock.last_reset(now)
    wait_ticks(watched, "live", 3)
    due_bodies = [b for b in receiver.bodies if b["instance"] == "live" and b["kind"] == "signin_due"]
    assert len(due_bodies) == (1 if due else 0), (due, receiver.bodies)
    if due:
        assert "ibgw-ops live-signin" in due_bodies[0]["detail"]


def test_a_killed_gateway_gives_one_post_with_its_exit_code_and_ready_again_one_recovered(watched, receiver):
    # The journal keeps what other modules' alerts on this VM said: this test reads its own part only.
    since = watched.ssh("date +%s").strip()
    watched.cli("paper-up")
    wait_ticks(watched, "paper", 2)
    assert kinds(receiver, "paper") == [], "a fresh start alerts nothing"
    killed = time.monotonic()
    watched.ssh("docker kill ibgw-paper >/dev/null")
    wait_for("the container_exited POST", lambda: kinds(receiver, "paper") == ["container_exited"], 60, 0.2)
    assert time.monotonic() - killed < 60
    wait_ticks(watched, "paper", 3)
    (body,) = [b for b in receiver.bodies if b["instance"] == "paper"]
    assert body["kind"] == "container_exited" and body["host"] == watched.name
    assert "ibgw-paper exited (exit code 137" in body["detail"], body
    assert set(body) == {"kind", "instance", "host", "detail", "time"}
    watched.cli("paper-up")
    wait_for("the recovered POST", lambda: kinds(receiver, "paper") == ["container_exited", "recovered"], 60, 0.2)
    watched.cli("paper-down")
    wait_ticks(watched, "paper", 3)
    assert kinds(receiver, "paper") == ["container_exited", "recovered"], "a tidy stop pages nobody"
    journal = watched.ssh(f"journalctl -u ibgw-watchdog@paper.service --since @{since} -o cat | grep IBGW_ALERT "
                          "|| true")
    assert journal.count("IBGW_ALERT container_exited paper") == 1 and journal.count("IBGW_ALERT recovered") == 1


def test_a_disconnect_shorter_than_the_grace_alerts_nothing(watched, receiver):
    watched.cli("up", "live", "--timeout", "120")
    wait_ticks(watched, "live", 1)
    watched.ssh(OUTAGE.format(container="ibgw-live"))

    def disconnected_seen() -> bool:
        state = json.loads(watched.ssh(f"cat {STATE}/live.json"))
        return bool(state["disconnected_since"])

    wait_for("the watchdog to see the disconnect", disconnected_seen, RECONNECT + 2 * INTERVAL, 0.5)
    wait_for("live reconnected", lambda: not disconnected_seen(), RECONNECT + 60, 1)
    wait_ticks(watched, "live", 2)
    assert kinds(receiver, "live") == []
    watched.cli("down", "live")


def test_a_taken_paper_session_gives_one_session_taken(watched, receiver):
    watched.cli("paper-up")
    wait_ticks(watched, "paper", 1)
    before = kinds(receiver, "paper")
    watched.ssh(LOGIN_ELSEWHERE.format(container="ibgw-paper"))
    wait_for("the session_taken POST", lambda: kinds(receiver, "paper") == [*before, "session_taken"], 60, 0.2)
    wait_ticks(watched, "paper", 3)
    assert kinds(receiver, "paper") == [*before, "session_taken"]
    watched.cli("paper-down")


def test_a_hung_api_gives_one_api_hung_and_one_soft_restart(watched, receiver):
    watched.use_settings(settings(receiver, [*INSTANCES, HUNG]))
    up = watched.cli("up", "hung", "--timeout", "10", check=False)
    assert up.returncode != 0, "the stand-in's hung API never becomes ready"
    wait_for("the api_hung POST", lambda: kinds(receiver, "hung") == ["api_hung"], 60, 0.2)
    (body,) = [b for b in receiver.bodies if b["instance"] == "hung" and b["kind"] not in CALENDAR]
    assert "hung" in body["detail"] and "soft restart through IBC RESTART" in body["detail"], body
    # IBC restarts the gateway at the next minute (RestartTask); the restarted one hangs again: no second alert.
    wait_for("IBC's restart", lambda: "autorestart file found" in watched.ssh("docker logs ibgw-hung 2>&1"), 90)
    wait_ticks(watched, "hung", 4)
    assert kinds(receiver, "hung") == ["api_hung"]
    assert watched.ssh("docker logs ibgw-hung 2>&1").count("RestartTask: verb = RESTART") == 1
    watched.cli("down", "hung")


def test_interval_0_stops_and_removes_the_timers_and_no_webhook_removes_its_file(watched, receiver):
    watched.host_settings(settings(receiver, [*INSTANCES, HUNG], ib_gateway_watchdog_interval=0,
                                   ib_gateway_alert_webhook=""))
    watched.converge("--tags", "ib_gateway")
    left = watched.ssh("systemctl list-units --all --no-legend 'ibgw-watchdog@*'; ls /etc/systemd/system "
                       "/etc/systemd/system/timers.target.wants | grep ibgw-watchdog; ls /opt/ibgw; true")
    assert "ibgw-watchdog" not in left and "alert-webhook" not in left, left
    assert recap_changed(watched.converge("--tags", "ib_gateway").stdout) == 0
