"""The lab VM looks like a fresh GCE Debian 13 instance and is reached with real SSH and real Ansible."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time

import pytest

from ibgw_ops.errors import ExitCode
from ibgw_ops.paths import ansible_command
from tests.conftest import free_port
from tests.support.lab import credentials_file

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


def test_the_inventory_plays_production_s_cloud_run_path(lab):
    """As provision writes for a GCE VM: the API on the VM's internal address, admitted from the controller only."""
    host = lab.host_vars()
    assert host["ib_gateway_bind_address"] == host["ibgw_internal_ip"] == host["ansible_host"]
    assert host["host_firewall_api_source_ranges"] == [f"{lab.controller}/32"]


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


# On the VM, in place of the image's x11vnc (the stand-in serves no VNC): one connection to 127.0.0.1:5901, paper's
# vnc_port, answered with the banner given as its argument.
LOOPBACK_LISTENER = ('import socket, sys; s = socket.create_server(("127.0.0.1", 5901)); s.settimeout(120); '
                     'c = s.accept()[0]; c.sendall(sys.argv[1].encode()); c.close()')


def test_ibgw_ops_vnc_tunnels_a_local_port_to_the_instance_s_loopback_vnc_port_until_ctrl_c(lab, tmp_path):
    creds = credentials_file(tmp_path, live={"user_id": "u1", "password": "p1"},
                             paper={"user_id": "u2", "password": "p2", "vnc_password": "v2"})
    lab.host_settings({"ib_gateway_credentials_file": str(creds)})
    try:
        off = lab.cli("vnc", "live", check=False)
        assert off.returncode == ExitCode.BAD_INPUT
        assert "ib_gateway_credentials.live.vnc_password: not set, so its VM serves no VNC" in off.stderr
        unknown = lab.cli("vnc", "papr", check=False)
        assert unknown.returncode == ExitCode.BAD_INPUT
        assert "INSTANCE: 'papr' is not an instance of the inventory (allowed: live, paper)" in unknown.stderr
        banner = f"RFB 003.008 {secrets.token_hex(8)}"
        lab.ssh(f"setsid python3 -c '{LOOPBACK_LISTENER}' '{banner}' </dev/null >/dev/null 2>&1 &")
        port = free_port()
        tunnel = subprocess.Popen([sys.executable, "-m", "ibgw_ops", "vnc", "paper", "--local-port", str(port)],
                                  env=lab.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert f"point a VNC viewer at 127.0.0.1:{port}" in tunnel.stdout.readline()
            assert read_through(port) == banner
        finally:
            tunnel.send_signal(signal.SIGINT)
            try:
                _, err = tunnel.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                tunnel.kill()
                _, err = tunnel.communicate()
                raise AssertionError(f"ibgw-ops vnc still ran 30 s after its SIGINT; its stderr:\n{err}") from None
        assert tunnel.returncode == ExitCode.OK, err
        assert "tunnel closed" in err
    finally:
        lab.host_settings(None)


def read_through(port: int) -> str:
    """What the first connection to the local port brings back (ssh binds it only after its login)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
                answer = connection.recv(100).decode()
            if answer:
                return answer
        except OSError:
            pass
        assert time.monotonic() < deadline, f"nothing came through 127.0.0.1:{port}"
        time.sleep(0.5)
