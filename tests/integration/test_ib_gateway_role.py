"""Role ib_gateway on the lab VM: what Molecule's scenario does not cover (restart pending, reboots, VNC, N
instances, bad variables)."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.support.lab import Lab, credentials_file, recap_changed

pytestmark = [pytest.mark.integration, pytest.mark.configured_vm]


def start(lab: Lab, *names: str) -> None:
    for name in names:
        lab.ssh(f"docker compose --project-directory /opt/ibgw/{name} up --detach --wait")




def running(lab: Lab) -> set[str]:
    return set(lab.ssh("docker ps --format '{{.Names}}'").split())


def host_fingerprint(lab: Lab) -> str:
    """Everything a bad run could have touched: the instance tree, containers, and the installed packages."""
    return lab.ssh("find /opt/ibgw /etc/docker -printf '%p %m %U %s %T@\\n' 2>/dev/null | sort; "
                   "docker ps -a --format '{{.Names}} {{.ID}} {{.Status}}' 2>/dev/null; dpkg -l | md5sum")


def test_a_changed_configuration_never_recreates_a_running_gateway(deployed, tmp_path):
    start(deployed, "live")
    deployed.ssh("docker compose --project-directory /opt/ibgw/paper stop")
    before = deployed.container_id("live")
    result = deployed.converge("-e", "ib_gateway_java_heap_size=1024")
    assert "restart pending: gateway live" in result.stdout
    assert "restart pending: gateway paper" not in result.stdout
    assert deployed.container_id("live") == before and "ibgw-live" in running(deployed)
    assert "ibgw-paper" not in running(deployed)
    assert "JAVA_HEAP_SIZE='1024'" in deployed.ssh("cat /opt/ibgw/live/.env")
    assert deployed.ssh("ls /opt/ibgw/live /opt/ibgw/paper").count("restart-pending") == 1
    again = deployed.converge("-e", "ib_gateway_java_heap_size=1024")
    assert recap_changed(again.stdout) == 0
    assert "restart pending: gateway live" in again.stdout


def test_a_changed_time_zone_reaches_the_existing_jts_ini(deployed):
    """The image writes TIME_ZONE into jts.ini only when the file is new; the role keeps its TimeZone line."""
    jts = "/opt/ibgw/live/settings/jts.ini"
    start(deployed, "live")
    deployed.ssh(f"chmod 0640 {jts}")
    result = deployed.converge("-e", "ib_gateway_time_zone=Europe/London")
    assert "restart pending: gateway live" in result.stdout
    lines = deployed.ssh(f"cat {jts}").splitlines()
    assert [line for line in lines if line.startswith("TimeZone=")] == ["TimeZone=Europe/London"]
    assert lines.index("TimeZone=Europe/London") > lines.index("[Logon]")
    assert deployed.ssh(f"stat -c '%u %g %a' {jts}").split() == ["1000", "1000", "640"]
    again = deployed.converge("-e", "ib_gateway_time_zone=Europe/London")
    assert recap_changed(again.stdout) == 0
    checked = deployed.converge("--check", "-e", "ib_gateway_time_zone=Asia/Tokyo")
    assert "TimeZone=Europe/London" in deployed.ssh(f"cat {jts}")
    assert recap_changed(checked.stdout) > 0
    deployed.converge()
    assert "TimeZone=Europe/London" not in deployed.ssh(f"cat {jts}")


def test_vnc_is_published_on_loopback_only_when_a_password_is_set(deployed, tmp_path):
    creds = credentials_file(tmp_path, live={"user_id": "u1", "password": "p1"},
                             paper={"user_id": "u2", "password": "p2", "vnc_password": "v2"})
    deployed.converge("-e", f"ib_gateway_credentials_file={creds}")
    compose = yaml.safe_load(deployed.ssh("cat /opt/ibgw/paper/compose.yaml"))["services"]["gateway"]
    internal = deployed.host_vars()["ibgw_internal_ip"]
    assert compose["ports"] == [f"{internal}:4002:4004", "127.0.0.1:5901:5900"]
    assert "VNC_SERVER_PASSWORD_FILE='/run/secrets/vnc_password'" in deployed.ssh("cat /opt/ibgw/paper/.env")
    assert deployed.ssh("stat -c '%u %a' /opt/ibgw/paper/secrets/vnc_password").strip() == "1000 400"
    live = yaml.safe_load(deployed.ssh("cat /opt/ibgw/live/compose.yaml"))["services"]["gateway"]
    assert live["ports"] == [f"{internal}:4001:4003"]
    deployed.converge()
    assert "vnc_password" not in deployed.ssh("ls /opt/ibgw/paper/secrets")
    assert "VNC" not in deployed.ssh("cat /opt/ibgw/paper/.env /opt/ibgw/paper/compose.yaml")


def test_n_instances_with_distinct_ports(deployed, tmp_path):
    instances = [{"name": "live", "mode": "live"}, {"name": "paper", "mode": "paper"},
                 {"name": "paper-b", "mode": "paper", "api_port": 4012, "vnc_port": 5912}]
    creds = credentials_file(tmp_path, **{i["name"]: {"user_id": i["name"], "password": "pw"} for i in instances})
    extra = json.dumps({"ib_gateway_instances": instances, "ib_gateway_credentials_file": str(creds)})
    deployed.converge("-e", extra)
    start(deployed, "paper-b")
    internal = deployed.host_vars()["ibgw_internal_ip"]
    assert f"{internal}:4012->4004/tcp" in deployed.ssh("docker ps --filter name=ibgw-paper-b --format '{{.Ports}}'")
    deployed.ssh("docker compose --project-directory /opt/ibgw/paper-b down && rm -rf /opt/ibgw/paper-b")


@pytest.mark.parametrize(("extra", "field", "allowed"), [
    ({"ib_gateway_instances": [{"name": "x", "mode": "demo"}]}, "mode", "live, paper"),
    ({"ib_gateway_instances": [{"name": "live", "mode": "live", "api_port": 70000}]}, "api_port", "1-65535"),
    ({"ib_gateway_bind_address": "localhost"}, "bind_address", "IPv4 address"),
    ({"ib_gateway_image": "ghcr.io/gnzsnz/ib-gateway:stable"}, "image", "pinned to a version tag"),
    ({"ib_gateway_instances": [{"name": "paper", "mode": "paper", "restart_policy": "always"}]},
     "restart_policy", '"no"'),
])
def test_a_bad_variable_fails_before_any_change(lab, extra, field, allowed):
    """On a fresh VM: not even Docker gets installed when one gateway setting is wrong."""
    before = host_fingerprint(lab)
    result = lab.playbook("site.yml", "-e", json.dumps(extra))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert field in output and allowed in output, output
    assert "Configure the gateway hosts" not in output
    assert host_fingerprint(lab) == before


def test_missing_credentials_are_named_without_values(lab, tmp_path):
    creds = credentials_file(tmp_path, live={"user_id": "u1", "password": "CANARY-only-live"})
    result = lab.playbook("site.yml", "-e", f"ib_gateway_credentials_file={creds}")
    assert result.returncode != 0
    assert "instances ['paper'] need user_id and password" in result.stdout
    assert "CANARY" not in result.stdout + result.stderr
