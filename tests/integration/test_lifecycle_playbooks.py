"""Lifecycle playbooks (start, stop, restart, status, logs) with plain ansible-playbook on the lab VM."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.lab import Lab

pytestmark = [pytest.mark.integration, pytest.mark.configured_vm]


def statuses(lab: Lab, target: str = "all", playbook: str = "status.yml") -> dict[str, dict]:
    result = lab.playbook(playbook, "-e", f"ib_gateway_target={target}")
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
    assert "IBC: Login has completed: exiting via [File, Close] menu" in deployed.ssh("docker logs ibgw-paper 2>&1")
    assert statuses(deployed, "paper")["paper"]["container"] == "exited"


def test_restart_applies_a_pending_configuration(deployed):
    assert deployed.playbook("start.yml", "-e", "ib_gateway_target=live").returncode == 0
    before = deployed.container("live").split()[0]
    deployed.converge("-e", "ib_gateway_java_heap_size=900")
    assert statuses(deployed, "live")["live"]["restart_pending"] is True
    soft = deployed.playbook("restart.yml", "-e", "ib_gateway_target=live", "-e", "ib_gateway_java_heap_size=900")
    assert soft.returncode == 0, soft.stdout
    assert '"restart_pending": true' in soft.stdout, "a soft restart keeps the container and its configuration"
    assert statuses(deployed, "live")["live"]["restart_pending"] is True
    assert deployed.container("live").split()[0] == before
    restarted = deployed.playbook("restart.yml", "-e", "ib_gateway_target=live", "-e", "ib_gateway_java_heap_size=900",
                                  "-e", "ib_gateway_restart_hard=true")
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


def test_the_checkout_runs_a_playbook_by_its_path_and_by_its_fqcn_alike(deployed):
    by_path = statuses(deployed)
    by_fqcn = statuses(deployed, playbook="ibgw_ops.gateway.status")
    assert set(by_path) == set(by_fqcn) == {"live", "paper"}
    assert {name: row["container"] for name, row in by_path.items()} == \
        {name: row["container"] for name, row in by_fqcn.items()}
