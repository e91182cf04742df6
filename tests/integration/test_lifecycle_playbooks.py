"""Lifecycle playbooks (start, stop, restart, status, logs) with plain ansible-playbook on the lab VM."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.integration.conftest import Lab

pytestmark = pytest.mark.integration


def statuses(lab: Lab, target: str = "all") -> dict[str, dict]:
    result = lab.playbook("status.yml", "-e", f"ib_gateway_target={target}")
    assert result.returncode == 0, result.stdout
    found = {}
    for block in re.findall(r'"ibgw_status": (\{.*?\n {8}\})', result.stdout, re.DOTALL):
        entry = json.loads(block)
        found[entry["instance"]] = entry
    return found


def test_start_waits_until_ready_and_stop_is_tidy(deployed):
    started = deployed.playbook("start.yml", "-e", "ib_gateway_target=paper")
    assert started.returncode == 0, started.stdout
    paper = statuses(deployed)["paper"]
    assert paper["container"] == "running" and paper["probe"] == "ready"
    assert paper["accounts"] == ["DU1234567"] and paper["server_version"] == 176
    assert statuses(deployed)["live"]["container"] in ("absent", "exited", "created")
    again = deployed.playbook("start.yml", "-e", "ib_gateway_target=paper")
    assert "changed=0" in again.stdout.split("PLAY RECAP")[1]
    stopped = deployed.playbook("stop.yml", "-e", "ib_gateway_target=paper")
    assert stopped.returncode == 0, stopped.stdout
    assert "STOP received on the command server" in deployed.ssh("docker logs ibgw-paper 2>&1")
    assert statuses(deployed, "paper")["paper"]["container"] == "exited"


def test_wrong_credentials_fail_clearly_without_a_restart_loop(deployed):
    extra = json.dumps({"ib_gateway_extra_env": {"STANDIN_ACCEPT_USERID": "someone-else",
                                                 "STANDIN_LOGIN_DELAY": "1"}})
    deployed.converge("-e", extra)
    result = deployed.playbook("start.yml", "-e", "ib_gateway_target=live", "-e", extra)
    assert result.returncode != 0
    assert "NOT READY: gateway live" in result.stdout and "Login failed" in result.stdout
    first = deployed.container("live")
    time.sleep(4)
    assert deployed.container("live") == first
    assert first.split()[1] == "exited"
    deployed.converge()


def test_restart_applies_a_pending_configuration(deployed):
    assert deployed.playbook("start.yml", "-e", "ib_gateway_target=live").returncode == 0
    before = deployed.container("live").split()[0]
    deployed.converge("-e", "ib_gateway_java_heap_size=900")
    assert statuses(deployed, "live")["live"]["restart_pending"] is True
    restarted = deployed.playbook("restart.yml", "-e", "ib_gateway_target=live", "-e", "ib_gateway_java_heap_size=900")
    assert restarted.returncode == 0, restarted.stdout
    live = statuses(deployed, "live")["live"]
    assert live["probe"] == "ready" and live["restart_pending"] is False
    assert deployed.container("live").split()[0] != before
    assert "JAVA_HEAP_SIZE=900" in deployed.ssh("docker exec ibgw-live env")
    deployed.playbook("stop.yml", "-e", "ib_gateway_target=live")
    deployed.converge()


def test_logs_and_an_unknown_target(deployed):
    logs = deployed.playbook("logs.yml", "-e", "ib_gateway_target=live")
    assert logs.returncode == 0 and "REHEARSAL STAND-IN" in logs.stdout
    bad = deployed.playbook("start.yml", "-e", "ib_gateway_target=demo")
    assert bad.returncode != 0
    assert "ib_gateway_target: 'demo' matches no instance (allowed: all, live, paper)" in bad.stdout
