"""The fault matrix, on the roles VM with the stand-in. Each test names the fault, the behaviour an operator can rely
on (a clear message, a documented exit code, the host in a known state), and checks that nothing was lost: the
configuration and secret files under /opt/ibgw are byte for byte the same, and the settings directories keep
their files (``Lab.keepsakes``).

| fault                                   | expected                                                                |
|-----------------------------------------|-------------------------------------------------------------------------|
| host unreachable                        | exit 3 naming the host                                                  |
| sshd stopped                            | exit 3; once sshd is back, paper-up works                               |
| dockerd stopped at up                   | exit 1 naming the Docker daemon; no dead-man timer left; works after    |
| paper container killed in its window    | status says exited; paper-down exit 0; no timer left; paper-up works    |
| VM reboot in the paper window           | live comes back, paper stays down, no timer                             |
| image missing and unpullable            | exit 1 saying the image is missing and that deploy brings it            |
| /opt/ibgw on a full filesystem          | deploy exit 1 "No space left"; files intact; converges once freed       |
| deploy interrupted midway               | exit 5; the rerun converges; the next changes nothing                   |
| wrong credentials                       | exit 8, alert login_failed, no restart loop                             |
| session taken elsewhere                 | paper-up exit 6, alert session_taken, paper down                        |
| 2FA never approved                      | live-signin exit 7 at its deadline, alert, live stopped (no more pushes)|
| inside the protected window             | down/restart/live-signin of live exit 9, live untouched                 |
| two operators at once                   | two paper-up: one gateway; a racing paper-down runs after the up        |
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ibgw_ops.errors import ExitCode
from tests.support.lab import Lab, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.reliability]
IBGW_OPS = str(Path(sys.executable).parent / "ibgw-ops")
# The whole day, every day: whatever the hour of the run, now is inside.
ALWAYS = {"time_zone": "Europe/Paris", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
          "start": "00:00", "end": "00:00"}








def vm_exec(lab: Lab, docker_client: object, command: str) -> None:
    """Run a command in the VM without SSH (for when SSH itself is the fault)."""
    code, output = docker_client.containers.get(lab.name).exec_run(["sh", "-c", command])  # type: ignore[attr-defined]
    assert code == 0, output


@pytest.fixture
def intact(deployed: Lab) -> Iterator[Lab]:
    """The deployed VM; after the test, every keepsake from before is still there."""
    before = deployed.keepsakes()
    yield deployed
    after = deployed.keepsakes()
    assert before <= after, f"lost: {sorted(before - after)}"


def test_an_unreachable_host_exits_3_naming_it(intact, tmp_path):
    hosts = intact.host_vars()
    inventory = {"all": {"children": {"ibgw_gateways": {"hosts": {"ibgw-gone": {**hosts, "ansible_port": 1}}}}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    result = intact.cli("-i", str(tmp_path / "hosts.yml"), "status", check=False)
    assert result.returncode == ExitCode.UNREACHABLE, result.stderr
    assert re.search(r"ibgw-gone: .*Connection refused", result.stderr), result.stderr


def test_sshd_stopped_exits_3_and_paper_up_works_once_it_is_back(intact, docker_client):
    # Existing sessions (Ansible's persistent connections) outlive the service: end them too.
    vm_exec(intact, docker_client, "systemctl stop ssh.service ssh.socket 2>/dev/null; pkill -f '[s]shd'; true")
    try:
        result = intact.cli("paper-up", check=False)
    finally:
        vm_exec(intact, docker_client, "systemctl start ssh.service")
    assert result.returncode == ExitCode.UNREACHABLE, result.stderr
    assert f"{intact.name}: " in result.stderr and "Connection refused" in result.stderr
    assert intact.container_state("paper") != "running"
    intact.cli("paper-up")
    intact.cli("paper-down")


def test_dockerd_stopped_at_up_fails_naming_the_daemon_and_leaves_no_timer(intact):
    intact.ssh("systemctl stop docker.socket docker.service")
    try:
        result = intact.cli("paper-up", check=False)
    finally:
        intact.ssh("systemctl start docker.service")
    assert result.returncode == ExitCode.FAILED, result.stderr
    assert "START FAILED: gateway paper" in result.stderr and "Docker daemon" in result.stderr
    assert "IBGW_ALERT not_ready paper" in result.stderr
    assert intact.deadman_timers() == ""
    assert intact.container_state("paper") != "running"
    intact.cli("paper-up")
    intact.cli("paper-down")


def test_a_paper_container_killed_in_its_window_is_reported_and_paper_comes_back_on_demand(intact):
    intact.cli("paper-up")
    intact.ssh("docker kill ibgw-paper")
    rows = intact.status_rows()
    assert rows["paper"]["container"] == "exited" and rows["paper"]["probe"] == "refused"
    time.sleep(2)
    assert intact.container_state("paper") == "exited", "paper never comes back by itself"
    down = intact.cli("paper-down", check=False)
    assert (down.returncode, down.stderr) == (0, "")
    assert intact.deadman_timers() == ""
    intact.cli("paper-up")
    intact.cli("paper-down")


def test_a_reboot_in_the_paper_window_brings_live_back_and_leaves_paper_down(intact):
    intact.cli("up", "live")
    intact.cli("paper-up")
    intact.reboot()
    wait_for("live back after the reboot", lambda: [row["probe"] for row in json.loads(
        intact.cli("status", "live", "--json", check=False).stdout or "[]")] == ["ready"], 180, 2)
    assert intact.container_state("paper") == "exited"
    assert intact.deadman_timers() == ""
    intact.cli("down", "live")


def test_a_missing_unpullable_image_says_so_and_names_deploy(intact):
    image = intact.ssh("docker inspect --format '{{.Config.Image}}' ibgw-paper").strip()
    # Untag it (a second tag keeps the layers, so putting it back is instant; loading it is deploy's job, tested
    # with the roles).
    intact.ssh(f"docker rm ibgw-paper >/dev/null && docker tag {image} ibgw-fault/kept:1 && docker rmi {image}")
    try:
        result = intact.cli("paper-up", check=False)
    finally:
        intact.ssh(f"docker tag ibgw-fault/kept:1 {image} && docker rmi ibgw-fault/kept:1")
    assert result.returncode == ExitCode.FAILED, result.stderr
    assert f"image {image} is not on this host, and a start never pulls: run deploy" in result.stderr
    assert intact.container_state("paper") == "", "nothing was created"
    assert intact.deadman_timers() == ""
    intact.cli("paper-up")
    intact.cli("paper-down")


def test_a_full_filesystem_fails_the_deploy_cleanly_and_it_converges_once_freed(intact):
    intact.ssh("mkdir -p /root/ibgw-copy && cp -a /opt/ibgw/. /root/ibgw-copy/ && "
               "size=$(( $(du -sk /opt/ibgw | cut -f1) + 512 )) && mount -t tmpfs -o size=${size}k tmpfs /opt/ibgw && "
               "cp -a /root/ibgw-copy/. /opt/ibgw/ && (dd if=/dev/zero of=/opt/ibgw/filler bs=4k 2>/dev/null; true)")
    try:
        before = {line for line in intact.keepsakes() if not line.endswith("./filler")}
        intact.host_settings({"ib_gateway_java_heap_size": 900})
        full = intact.cli("deploy", check=False)
        assert full.returncode == ExitCode.FAILED, full.stderr
        assert "No space left on device" in full.stderr, full.stderr
        assert before <= intact.keepsakes(), "a failed write must leave the old file whole"
        intact.ssh("rm /opt/ibgw/filler")
        intact.cli("deploy")
        assert "JAVA_HEAP_SIZE='900'" in intact.ssh("cat /opt/ibgw/paper/.env")
    finally:
        intact.ssh("umount /opt/ibgw; rm -rf /root/ibgw-copy")
        intact.use_settings(None)


def test_an_interrupted_deploy_exits_5_and_the_rerun_converges(intact):
    intact.ssh("rm -f /opt/ibgw/live/ibc-config.ini.tmpl /opt/ibgw/paper/ibc-config.ini.tmpl /opt/ibgw/*/stop")
    deploy = subprocess.Popen([IBGW_OPS, "deploy"], env=intact.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    time.sleep(6)
    deploy.send_signal(signal.SIGTERM)
    _, err = deploy.communicate(timeout=300)
    assert deploy.returncode == ExitCode.INTERRUPTED, err
    assert "interrupted by SIGTERM; the hosts may be mid-change" in err
    rerun = intact.cli("deploy")
    assert rerun.returncode == 0
    again = intact.playbook("site.yml")
    assert again.returncode == 0 and "changed=0" in again.stdout.split("PLAY RECAP")[1], again.stdout[-1500:]


def test_wrong_credentials_exit_8_without_a_restart_loop(intact):
    # A Gateway's Java start takes seconds before IBC's next login attempt; 3 s is a short one.
    extra = json.dumps({"ib_gateway_extra_env": {"STANDIN_ACCEPT_USERID": "someone-else", "STANDIN_START_DELAY": "3"}})
    intact.converge("-e", extra)
    try:
        result = intact.cli("up", "live", "--timeout", "60", check=False)
        assert result.returncode == ExitCode.LOGIN_FAILED
        assert "LOGIN FAILED: gateway live" in result.stderr and "Login failed" in result.stderr
        assert "IBGW_ALERT login_failed live" in result.stderr
        first = intact.container("live")
        time.sleep(3)
        assert intact.container("live") == first
        assert first.split()[1:] == ["exited", "0"]
        assert intact.ssh("docker logs ibgw-live 2>&1").count("IBC: Login attempt: ") == 1
    finally:
        intact.converge()


def test_session_taken_2fa_never_approved_and_the_protected_window(intact):
    intact.cli("up", "live")
    try:
        _conflicts_and_the_window(intact)
    finally:
        intact.use_settings(None)


def _conflicts_and_the_window(intact: Lab) -> None:
    intact.use_settings({
        "ib_gateway_protected_window": ALWAYS,
        "ib_gateway_instances": [
            {"name": "live", "mode": "live", "extra_env": {"STANDIN_NEVER_LOGIN": "yes"}},
            {"name": "paper", "mode": "paper", "existing_session_detected_action": "secondary",
             "extra_env": {"STANDIN_OTHER_SESSION": "yes"}}]})
    live = intact.container("live")
    refused = intact.cli("down", "live", check=False)
    assert refused.returncode == ExitCode.PROTECTED_WINDOW
    assert "PROTECTED WINDOW: refusing to stop live gateway(s) live" in refused.stderr
    assert intact.cli("restart", "live", check=False).returncode == ExitCode.PROTECTED_WINDOW
    assert intact.cli("live-signin", check=False).returncode == ExitCode.PROTECTED_WINDOW
    assert intact.container("live") == live and live.split()[1] == "running"

    signin = intact.cli("live-signin", "--timeout", "10", "--force", check=False)
    assert signin.returncode == ExitCode.TWOFA_TIMEOUT, signin.stderr
    assert "2FA NOT APPROVED: gateway live" in signin.stderr
    assert "IBGW_ALERT 2fa_needed live 2fa not approved" in signin.stderr
    assert intact.container_state("live") == "exited", "no more 2FA pushes after the deadline"

    taken = intact.cli("paper-up", check=False)
    assert taken.returncode == ExitCode.SESSION_TAKEN, taken.stderr
    assert "IBGW_ALERT session_taken paper" in taken.stderr
    assert intact.container_state("paper") == "exited"
    assert intact.cli("paper-down").returncode == 0, "paper is never protected"


def test_two_concurrent_paper_ups_leave_one_gateway_and_a_racing_down_wins_last(intact):
    runs = [subprocess.Popen([IBGW_OPS, "paper-up"], env=intact.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    results = [(run.wait(timeout=300), run.stderr.read()) for run in runs]  # type: ignore[union-attr]
    assert [code for code, _ in results] == [0, 0], results
    paper = intact.ssh("docker ps --filter label=io.ibgw-ops.mode=paper --format '{{.Names}}'")
    assert paper.split() == ["ibgw-paper"]
    assert intact.ssh("docker inspect --format '{{.RestartCount}}' ibgw-paper").strip() == "0"
    intact.cli("paper-down")
    up = subprocess.Popen([IBGW_OPS, "paper-up"], env=intact.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    wait_for("paper-up to hold the lock", lambda: intact.container_state("paper") == "running" or up.poll() is not None,
             120, 0.1)
    down = intact.cli("paper-down", check=False)
    assert (up.wait(timeout=300), down.returncode) == (0, 0), (up.stderr.read(), down.stderr)  # type: ignore[union-attr]
    assert intact.container_state("paper") == "exited", "the down that came second ran after the up"
    assert intact.deadman_timers() == ""
