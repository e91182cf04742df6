"""The lab VM looks like a fresh GCE Debian 13 instance and is reached with real SSH and real Ansible."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from ibgw_ops.errors import ExitCode
from ibgw_ops.paths import ansible_command

pytestmark = pytest.mark.integration


def test_vm_is_a_fresh_debian_13_with_systemd_sshd_python_and_no_docker(lab):
    lines = lab.ssh("systemctl is-system-running; python3 --version; . /etc/os-release; echo $VERSION_ID; "
                    "command -v docker || echo absent; ps -p 1 -o comm=").split()
    assert lines[0] in ("running", "degraded")
    assert lines[1:3] == ["Python", lines[2]] and lines[2].startswith("3.")
    assert lines[3:] == ["13", "absent", "systemd"]


def test_keys_are_private_and_the_host_key_is_pinned(lab):
    lab_dir = lab.state / "lab"
    for key in ("id_ed25519", "ssh_host_ed25519_key"):
        assert (lab_dir / key).stat().st_mode & 0o777 == 0o600
    address = lab.host_vars()["ansible_host"]
    pinned = (lab_dir / "known_hosts").read_text().split()
    assert pinned[0] == address
    assert pinned[2] == (lab_dir / "ssh_host_ed25519_key.pub").read_text().split()[1]


def test_real_ansible_reaches_the_vm_through_the_written_inventory_with_host_key_checking(lab):
    env = {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "True"}
    ansible = ansible_command("ansible")
    result = subprocess.run([ansible, "-i", str(lab.inventory), "ibgw_gateways", "-m", "ansible.builtin.ping"],
                            env=env, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{lab.name} | SUCCESS" in result.stdout
    assert lab.host_vars()["ibgw_lab_standin_image"].startswith("ibgw-lab/ib-gateway:standin-")
    assert (lab.inventory / "group_vars" / "ibgw_gateways.yml").exists()


def test_a_second_lab_up_changes_nothing(lab, docker_client):
    before = docker_client.containers.get(lab.name).attrs
    inventory_mtime = (lab.inventory / "hosts.yml").stat().st_mtime_ns
    result = lab.cli("lab", "up")
    after = docker_client.containers.get(lab.name).attrs
    assert after["Id"] == before["Id"]
    assert after["State"]["StartedAt"] == before["State"]["StartedAt"]
    assert (lab.inventory / "hosts.yml").stat().st_mtime_ns == inventory_mtime
    assert "building" not in result.stderr and "creating" not in result.stderr


def test_status_reports_the_running_vm(lab):
    status = json.loads(lab.cli("lab", "status", "--json").stdout)
    assert status["state"] == "running"
    assert status["address"] == lab.host_vars()["ansible_host"]
    assert status["image"].startswith("ibgw-lab/debian-vm:trixie-")


def test_restarting_the_container_is_a_reboot_that_keeps_the_disk(lab):
    lab.ssh("touch /root/survives-reboot /run/gone-after-reboot")
    lab.reboot()
    assert lab.ssh("ls /root/survives-reboot /run/gone-after-reboot 2>/dev/null; true").split() == [
        "/root/survives-reboot"
    ]
    assert lab.ssh("systemctl is-system-running --wait").strip() in ("running", "degraded")


def test_ibgw_ops_ssh_runs_a_command_on_the_vm_as_the_inventory_says(lab):
    ran = lab.cli("ssh", "--", "hostname", "&&", "id", "-un")
    assert ran.stdout.split() == [lab.ssh("hostname").strip(), "root"]
    refused = lab.cli("ssh", "nosuch", "--", "true", check=False)
    assert refused.returncode == ExitCode.BAD_INPUT and "HOST: 'nosuch' is not a host" in refused.stderr
