"""The operating model on the roles VM with the stand-in: the weekly live sign-in and the session calendar, soft and
hard restarts, paper's dead-man switch, a taken session in status and the alert webhook. Session conflicts, the
2FA deadline, the protected window, concurrent operators and reboots are in tests/faults.

Settings differ from the lab's defaults through a host_vars file in the lab's inventory, so the CLI reads them
exactly as an operator's inventory would. The dead-man switch's minute runs while the live tests use the VM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ibgw_ops import alerts
from ibgw_ops.errors import ExitCode
from ibgw_ops.on_host import session_clock
from tests.integration.leaks import processes
from tests.support.lab import Lab, wait_for
from tests.support.webhook import Receiver

pytestmark = [pytest.mark.integration, pytest.mark.configured_vm]
IBGW_OPS = str(Path(sys.executable).parent / "ibgw-ops")
LIFETIME = 60
# The stand-in's rehearsal of "the same user logged in elsewhere" (docs/lab.md: the stand-in).
LOGIN_ELSEWHERE = "docker exec {container} pkill -USR1 -f standin_gateway.py"


@pytest.fixture(scope="module")
def ops(converged_lab: Lab) -> Iterator[Lab]:
    """The roles VM with paper's dead-man switch at one minute, every gateway stopped."""
    converged_lab.use_settings({"ib_gateway_mode_defaults": {
        "live": {"api_port": 4001, "vnc_port": 5900, "restart_policy": "unless-stopped",
                 "existing_session_detected_action": "primary", "auto_restart_time": "11:45 PM", "max_lifetime": 0},
        "paper": {"api_port": 4002, "vnc_port": 5901, "restart_policy": "no",
                  "existing_session_detected_action": "primaryoverride", "auto_restart_time": "",
                  "max_lifetime": LIFETIME}}})
    converged_lab.cli("down", "all")
    yield converged_lab
    converged_lab.use_settings(None)


@pytest.fixture(scope="module")
def abandoned(ops: Lab) -> float:
    """Start ``paper-run -- sleep 600`` and SIGKILL the controller once paper is ready: no paper-down will come,
    only the dead-man switch is left. Returns when the VM armed the switch (epoch seconds, from systemd): the
    controller's own start-up before that is no part of the switch's minute and varies with the machine's load."""
    process = subprocess.Popen([IBGW_OPS, "paper-run", "--", "sleep", "600"], env=ops.env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    wait_for("paper-run's command", lambda: "sleep 600" in processes().splitlines(), 120, 0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert ops.container_state("paper") == "running", "paper should still run: nobody took it down"
    assert "ibgw-deadman-paper.timer" in ops.deadman_timers()
    armed = ops.ssh("systemctl show ibgw-deadman-paper.timer --property=ActiveEnterTimestamp --value --timestamp=unix")
    return float(armed.strip().lstrip("@"))


def test_the_weekly_sign_in_records_its_time_and_status_shows_the_session(ops, abandoned):
    result = ops.cli("live-signin", "--timeout", "120")
    assert "Approve the IBKR Mobile notification" in result.stderr
    assert "IBGW_ALERT 2fa_needed live live-signin started" in result.stderr
    record = ops.ssh("cat /opt/ibgw/live/signed-in-at").strip()
    assert record.endswith("+00:00")
    # Created with "no" so a failed login is never retried; ready, it has live's own policy.
    assert ops.ssh("docker inspect --format '{{.HostConfig.RestartPolicy.Name}}' ibgw-live").strip() == "unless-stopped"
    table = ops.cli("status", "live", env_extra={"TZ": "Asia/Tokyo"}).stdout
    assert "live on " + ops.name + ": signed in" in table and "JST" in table
    reset = session_clock.next_reset(datetime.now(UTC)).astimezone(ZoneInfo("Asia/Tokyo"))
    assert f"next weekly reset {reset:%a %Y-%m-%d %H:%M} JST" in table  # Sunday 01:00 New York, in Tokyo
    assert "7-day limit" in table and "WARNING" not in table
    assert ops.cli("status", "--check", check=False).returncode == ExitCode.OK


def test_live_restarts_softly_and_a_hard_restart_needs_the_flags(ops, abandoned):
    before, record = ops.container_id("live"), ops.ssh("cat /opt/ibgw/live/signed-in-at")
    soft = ops.cli("restart", "live")
    assert soft.returncode == 0
    assert ops.container_id("live") == before, "a soft restart keeps the container"
    assert ops.ssh("cat /opt/ibgw/live/signed-in-at") == record, "a soft restart continues the session"
    live_log = ops.ssh("docker logs ibgw-live 2>&1")
    assert "IBC: Setting auto-restart time to" in live_log, "IBC's RESTART, not a new container"
    assert "autorestart file found at" in live_log, "ibcstart.sh started IBC again without a login"
    refused = ops.cli("restart", "live", "--hard", check=False, stdin="")
    assert refused.returncode == ExitCode.BAD_INPUT
    assert "--yes: a hard restart asks for confirmation" in refused.stderr
    assert ops.container_id("live") == before
    ops.cli("restart", "live", "--hard", "--yes")
    assert ops.container_id("live") != before
    assert ops.ssh("cat /opt/ibgw/live/signed-in-at") != record, "a hard restart is a new sign-in"


def test_the_dead_man_switch_stops_paper_when_the_controller_was_killed(ops, abandoned):
    wait_for("paper stopped by the dead-man switch", lambda: ops.container_state("paper") == "exited",
             abandoned + LIFETIME + 60 - time.time())
    # When the container ended, from Docker on the VM: the live tests before this one may outlast the minute.
    stopped = float(ops.ssh("date -d \"$(docker inspect --format '{{.State.FinishedAt}}' ibgw-paper)\" +%s.%N"))
    assert LIFETIME - 1 <= stopped - abandoned <= LIFETIME + 60, (
        "the timer, armed at paper's start, fired: "
        + ops.ssh("journalctl -o short-precise -u 'ibgw-deadman-paper*' -u 'ibgw-watchdog@paper*' | tail -40"))
    assert "IBC: Login has completed: exiting via [File, Close] menu" in ops.ssh("docker logs ibgw-paper 2>&1"), (
        "a tidy stop: IBC's STOP")
    assert ops.deadman_timers() == ""


def test_a_taken_paper_session_shows_in_status_and_alerts_the_webhook(ops):
    receiver = Receiver()
    try:
        ops.cli("paper-up")
        ops.ssh(LOGIN_ELSEWHERE.format(container="ibgw-paper"))
        wait_for("paper to yield", lambda: ops.container_state("paper") == "exited", 30)
        env = {alerts.WEBHOOK_ENV: receiver.url}
        shown = ops.cli("status", "paper", env_extra=env)
        assert "WARNING paper on " + ops.name + ": the IBKR login is in use elsewhere" in shown.stdout
        assert receiver.bodies == []
        check = ops.cli("status", "paper", "--check", check=False, env_extra=env)
        assert check.returncode == ExitCode.ATTENTION
        assert "IBGW_ALERT session_taken paper the IBKR login is in use elsewhere" in check.stderr
        assert [(b["kind"], b["instance"], b["host"]) for b in receiver.bodies] == [
            ("session_taken", "paper", ops.name)]
    finally:
        receiver.shutdown()
        ops.cli("paper-down")
