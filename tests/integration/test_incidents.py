"""Incidents between the verbs on the roles VM, each played by the stand-in in IBC's and ibcstart.sh's words and named
by the VM's watchdog through the webhook, with no controller command between the event and the alert.

Three live gateways get IBC ``RESTART`` at the same minute (RestartTask: the gateway's own restart, as at its daily
auto-restart time), with the stand-in's knobs set in each settings folder beforehand (docs/lab.md):
- ``steady``: the restart resumes the session: a resumed login in the ledger, no alert;
- ``lost``: the token was not kept (IBC issue 290): ibcstart.sh ends, Docker's restart policy starts the container,
  IBC drives a full login and IBKR sends a 2FA push (approved), and IBC cannot find the Read-Only API checkbox;
- ``refused``: the same, and IBKR refuses the login: the watchdog stops the gateway.
Then the Docker daemon restarts: each running gateway's start is named with its cause.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest

from ibgw_ops.on_host import gateway_log
from tests.support.lab import Lab, wait_for
from tests.support.webhook import Receiver

pytestmark = [pytest.mark.integration, pytest.mark.restarts]
INTERVAL = 3
STATE = "/var/lib/ibgw-ops"
INSTANCES = [
    {"name": "steady", "mode": "live", "api_port": 4121, "vnc_port": 5971},
    {"name": "lost", "mode": "live", "api_port": 4122, "vnc_port": 5972, "read_only_api": "no"},
    {"name": "refused", "mode": "live", "api_port": 4123, "vnc_port": 5973},
]
NAMES = [instance["name"] for instance in INSTANCES]
KNOBS = {
    "lost": "STANDIN_RESUME=no\nSTANDIN_READ_ONLY_CHECKBOX=missing\n",
    "refused": "STANDIN_RESUME=no\nSTANDIN_ACCEPT_USERID=someone-else\n",
}
# The watchdog's conditions that a restart may pass through; the incidents are what this module is about.
PASSING = ("not_ready", "recovered", "signin_due", "session_expiring")
PUSH = "Second Factor Authentication initiated"


@pytest.fixture(scope="module")
def watched(deployed: Lab, receiver: Receiver) -> Iterator[Lab]:
    """The roles VM with the three live gateways up (each started by a verb), the watchdog every few seconds."""
    deployed.ssh(f"systemctl stop 'ibgw-watchdog@*.timer'; rm -rf {STATE}/watchdog {STATE}/logins")
    deployed.use_settings({
        "ib_gateway_instances": INSTANCES,
        "ib_gateway_credentials": {name: {"user_id": "rehearsal", "password": "rehearsal-only"} for name in NAMES},
        "ib_gateway_watchdog_interval": INTERVAL, "ib_gateway_watchdog_not_ready_ticks": 3,
        "ib_gateway_alert_webhook": receiver.url, "ib_gateway_alert_timeout": 3})
    for name in NAMES:
        deployed.cli("up", name, "--timeout", "120")
    yield deployed
    deployed.cli("down", "all", check=False)
    # The instances' watchdog timers go before their folders, else a tick meets no settings and its unit fails (and
    # a failed unit stays listed, which later modules on this VM would see).
    timers = " ".join(f"ibgw-watchdog@{name}.timer" for name in NAMES)
    services = " ".join(f"ibgw-watchdog@{name}.service" for name in NAMES)
    deployed.ssh(f"systemctl disable --now {timers} 2>/dev/null; systemctl stop {services}; "
                 + "; ".join(f"docker rm -f ibgw-{name} >/dev/null 2>&1; rm -rf /opt/ibgw/{name}" for name in NAMES)
                 + f"; rm -rf {STATE}/watchdog {STATE}/logins")
    deployed.use_settings(None)
    deployed.ssh("systemctl reset-failed 'ibgw-watchdog@*' || true")


def waited(lab: Lab, receiver: Receiver, what: str, check: Callable[[], bool], timeout: float) -> None:
    """``wait_for``, and on a timeout what was POSTed, the watchdog's journal and IBC's lines, to tell why."""
    try:
        wait_for(what, check, timeout, 1)
    except AssertionError as failed:
        seen = lab.ssh("journalctl -u 'ibgw-watchdog@*' -o cat --since '-10min' | grep -v '^Start\\|^Finish' "
                       "| tail -40; for c in " + " ".join(f"ibgw-{n}" for n in NAMES) + "; do echo == $c; "
                       "docker logs --timestamps $c 2>&1 | grep -v socat | tail -25; done")
        raise AssertionError(f"{failed}\nPOSTed: {json.dumps(receiver.bodies, indent=1)}\n{seen}") from None


def incidents(receiver: Receiver, instance: str) -> list[str]:
    return sorted(body["kind"] for body in receiver.bodies if body["instance"] == instance
                  and body["kind"] not in PASSING)


def body(receiver: Receiver, instance: str, kind: str) -> dict:
    """The newest alert of that kind for the instance."""
    found = [b for b in receiver.bodies if b["instance"] == instance and b["kind"] == kind]
    assert found, (instance, kind, receiver.bodies)
    return found[-1]


def logged_at(lab: Lab, instance: str, text: str) -> list[datetime]:
    """When the container's log showed ``text`` (Docker's stamps), each time."""
    stamped = lab.ssh(f"docker logs --timestamps ibgw-{instance} 2>&1 | grep -F {json.dumps(text)} || true")
    return [gateway_log.moment(line.split(" ")[0]) for line in stamped.splitlines()]


def within_a_minute(receiver: Receiver, lab: Lab, instance: str, kind: str, text: str) -> None:
    """The alert reached the webhook within 60 s of the line that shows the incident (its own time is its tick's
    start, which may come a second before a line that tick read)."""
    shown = logged_at(lab, instance, text)[-1]
    arrived = receiver.arrival(body(receiver, instance, kind))
    assert timedelta(0) <= arrived - shown < timedelta(seconds=60), (kind, shown, arrived)


def test_a_verbs_own_logins_alert_nothing_and_are_full_logins_in_the_ledger(watched, receiver):
    rows = watched.status_rows()
    for name in NAMES:
        assert rows[name]["last_login"]["kind"] == "full", rows[name]
        assert rows[name]["last_login"]["source"] == "a start by ibgw-ops"
        assert rows[name].get("good_until"), "signed in by the verb"
    assert all(incidents(receiver, name) == [] for name in NAMES), receiver.bodies


def test_restarts_that_resume_or_fall_back_to_a_full_login_are_each_named_once(watched, receiver):
    for name, knobs in KNOBS.items():
        watched.ssh(f"printf '{knobs}' > /opt/ibgw/{name}/settings/standin-knobs")
    watched.ssh("; ".join(f"python3 /opt/ibgw/{name}/ibc-command ibgw-{name} RESTART 7462 >/dev/null" for name in
                          NAMES))
    waited(watched, receiver, "the three incidents", lambda: (
        incidents(receiver, "lost") == ["2fa_needed", "api_read_only", "container_exited", "restart_full_login"]
        and incidents(receiver, "refused") == ["container_exited", "login_refused", "restart_full_login"]), 150)
    wait_for("refused stopped by the watchdog", lambda: watched.container_state("refused") == "exited", 60)
    rows = watched.status_rows()
    assert rows["steady"]["last_login"]["kind"] == "resumed", rows["steady"]
    assert incidents(receiver, "steady") == [], "a daily restart that resumes pages nobody"
    assert "could not be resumed" in body(receiver, "lost", "restart_full_login")["detail"]
    push = body(receiver, "lost", "2fa_needed")["detail"]
    assert "approve it in IBKR Mobile by " in push, push
    within_a_minute(receiver, watched, "lost", "2fa_needed", PUSH)
    within_a_minute(receiver, watched, "lost", "api_read_only", "could not find Read-Only API checkbox")
    within_a_minute(receiver, watched, "refused", "login_refused", "IBC: Login failed")
    assert len(logged_at(watched, "lost", PUSH)) == 2, "one push for the verb's login, one for the incident"
    lost = rows["lost"]
    assert lost["last_login"]["kind"] == "full" and "could not be resumed" in lost["last_login"]["source"]
    assert lost["signed_in_at"] and lost.get("good_until"), "the approved login began a new session"
    assert rows["refused"]["container"] == "exited" and not rows["refused"].get("good_until")
    # IBC relaunches and retries the same password every couple of seconds here: the watchdog's stop ends that
    # within its next tick and the stop itself.
    finished = watched.ssh("docker inspect --format '{{.State.FinishedAt}}' ibgw-refused").strip()
    first_failure = logged_at(watched, "refused", "IBC: Login failed")[0]
    assert gateway_log.moment(finished) - first_failure < timedelta(seconds=2 * INTERVAL + 10)


def test_a_docker_restart_is_a_non_event_and_a_reboot_names_each_gateway_it_brought_back(watched, receiver):
    """docker_engine sets live-restore: the daemon restarts under running gateways, which nobody needs to hear of.
    A reboot brings live back by its restart policy: a full login and one push, named with the boot's time."""
    running = ("steady", "lost")
    before = {name: incidents(receiver, name) for name in NAMES}
    started = {name: watched.container(name) for name in running}
    watched.ssh("systemctl restart docker")
    watched.ssh(f"sleep {3 * INTERVAL + 2}")
    assert {name: watched.container(name) for name in running} == started
    assert {name: incidents(receiver, name) for name in NAMES} == before
    watched.reboot()
    waited(watched, receiver, "the unplanned starts", lambda: all(
        "unplanned_start" in incidents(receiver, name) and incidents(receiver, name).count("2fa_needed")
        == before[name].count("2fa_needed") + 1 for name in running), 180)
    for name in running:
        detail = body(receiver, name, "unplanned_start")["detail"]
        assert "Docker's restart policy, after the machine booted at" in detail, detail
        within_a_minute(receiver, watched, name, "2fa_needed", PUSH)
    assert incidents(receiver, "refused") == before["refused"], "a stopped gateway stays stopped"
    rows = watched.status_rows()
    assert "after the machine booted" in rows["steady"]["last_login"]["source"], rows["steady"]
