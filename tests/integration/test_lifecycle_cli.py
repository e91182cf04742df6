"""The lifecycle verbs on the lab VM through the runner wrapper: what cron and an operator see."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ibgw_ops.errors import ExitCode
from ibgw_ops.on_host import tws_probe
from tests.integration.leaks import processes
from tests.support.lab import Lab, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.configured_vm]
IBGW_OPS = str(Path(sys.executable).parent / "ibgw-ops")


def api_client_on_vm(lab: Lab, port: int) -> str:
    """What an API client (client id 7) on the VM gets right now at the VM's address: state and accounts."""
    script = Path(tws_probe.__file__).read_text() + (
        f"\nr = probe('{lab.host_vars()['ibgw_internal_ip']}', {port}, client_id=7)\n"
        "print(r.state, ','.join(r.accounts))\n")
    return lab.cli("lab", "ssh", "--", "python3", "-", stdin=script).stdout.strip()


def from_cron(env: dict[str, str], verb: str) -> subprocess.CompletedProcess[str]:
    """Run a verb with nothing in the environment but ``env`` (``env -i``, as cron does)."""
    return subprocess.run(["env", "-i", *(f"{k}={v}" for k, v in env.items()), IBGW_OPS, verb],
                          capture_output=True, text=True, check=False, timeout=600)


def test_paper_up_from_cron_is_silent_and_ready_then_paper_down_stops_it(deployed):
    cron_env = {"PATH": "/usr/bin:/bin", "IBGW_OPS_INVENTORY": str(deployed.inventory),
                "IBGW_OPS_STATE_DIR": str(deployed.state)}
    up = from_cron(cron_env, "paper-up")
    assert (up.returncode, up.stdout, up.stderr) == (0, "", "")
    assert api_client_on_vm(deployed, 4002) == "ready DU1234567"
    paper = deployed.status_rows()["paper"]
    assert paper["container"] == "running" and paper["probe"] == "ready"
    assert paper["accounts"] == ["DU1234567"] and paper["uptime_seconds"] >= 0
    down = from_cron(cron_env, "paper-down")
    assert (down.returncode, down.stdout, down.stderr) == (0, "", "")
    assert deployed.container_state("paper") == "exited"
    assert deployed.status_rows()["paper"]["probe"] == "refused"


def test_paper_run_propagates_the_exit_code_and_takes_paper_down(deployed):
    failed = deployed.cli("paper-run", "--", "sh", "-c", 'test "$IBGW_API_PORT" = 4002 && exit 1', check=False)
    assert failed.returncode == 1, failed.stderr
    assert deployed.container_state("paper") == "exited"
    passed = deployed.cli("paper-run", "--", "true", check=False)
    assert passed.returncode == 0, passed.stderr
    assert deployed.container_state("paper") == "exited"


def test_paper_run_killed_with_sigterm_takes_paper_down(deployed):
    process = subprocess.Popen([IBGW_OPS, "paper-run", "--", "sleep", "600"], env=deployed.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while "sleep 600" not in processes().splitlines():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=300)
    assert process.returncode == ExitCode.INTERRUPTED, err
    assert "interrupted by SIGTERM; paper is down" in err
    assert deployed.container_state("paper") == "exited"
    assert "sleep 600" not in processes().splitlines()


def test_a_gateway_that_was_never_deployed_is_a_plain_failure_not_a_timeout(deployed):
    deployed.ssh("mv /opt/ibgw/paper/compose.yaml /opt/ibgw/paper/compose.yaml.away")
    try:
        result = deployed.cli("paper-up", check=False)
    finally:
        deployed.ssh("mv /opt/ibgw/paper/compose.yaml.away /opt/ibgw/paper/compose.yaml")
    assert result.returncode == ExitCode.FAILED, result.stderr
    assert "gateway paper: /opt/ibgw/paper/compose.yaml is missing: the gateway is not deployed" in result.stderr
    assert "NOT READY" not in result.stderr


def test_a_target_that_matches_no_instance_is_bad_input(deployed):
    result = deployed.cli("up", "demo", check=False)
    assert result.returncode == ExitCode.BAD_INPUT
    assert "ib_gateway_target: 'demo' matches no instance (allowed: all, live, paper)" in result.stderr


def test_status_and_logs_show_a_running_gateway(deployed):
    assert deployed.cli("up", "paper").stdout == ""
    table = deployed.cli("status", "paper").stdout
    assert re.search(rf"{deployed.name}\s+paper\s+paper\s+running\s+\d+m \d+s\s+ready\s+DU1234567", table), table
    logs = deployed.cli("logs", "paper", "-n", "5").stdout
    assert logs.startswith("== ") and len(logs.splitlines()) == 6
    deployed.cli("down", "paper")


def test_an_oom_killed_gateway_is_reported_and_its_logs_survive_the_next_start(deployed):
    deployed.cli("up", "paper")
    running = deployed.status_rows("paper")["paper"]
    assert running["memory_bytes"] > 2**20 and running["java_heap_mb"] == 768
    old_id = deployed.container_id("paper")
    # A real OOM kill: a limit just above what the gateway uses, its main process made the OOM killer's choice, then
    # a process in the container that needs more (tail holds its whole input in memory).
    limit = running["memory_bytes"] + 4 * 2**20
    deployed.ssh("pid=$(docker inspect --format '{{.State.Pid}}' ibgw-paper) && echo 1000 >/proc/$pid/oom_score_adj"
                 f" && docker update --memory {limit} --memory-swap {limit} ibgw-paper >/dev/null"
                 " && (docker exec ibgw-paper sh -c 'head -c 64m /dev/zero | tail' || true)")
    wait_for("the OOM kill", lambda: deployed.container_state("paper") == "exited", timeout=60)
    killed = deployed.status_rows("paper")["paper"]
    assert (killed["container"], killed["oom_killed"], killed["exit_code"]) == ("exited", True, 137)
    check = deployed.cli("status", "paper", "--check", check=False)
    assert check.returncode == ExitCode.ATTENTION
    assert "IBGW_ALERT container_exited paper the container was OOM-killed (exit 137)" in check.stderr
    assert re.search(r"exited \(exit 137 oom\)", deployed.cli("status", "paper").stdout)
    old_lines = deployed.cli("logs", "paper", "-n", "3").stdout.splitlines()[1:]
    deployed.cli("up", "paper")
    assert deployed.container_id("paper") != old_id
    previous = deployed.cli("logs", "paper", "--previous", "-n", "3").stdout.splitlines()
    assert previous[0].startswith(f"== {deployed.name} paper: previous container {old_id[:12]} (")
    assert previous[0].endswith(": exit 137 oom")
    assert previous[1:] == old_lines
    row = deployed.status_rows("paper")["paper"]
    assert (row["container"], row["exit_code"], row["previous"]["exit_code"]) == ("running", None, 137)
    assert re.search(r"running\s+\d+m \d+s\s+ready\s+DU1234567\s+\d+M/768M heap\s+exit 137 oom",
                     deployed.cli("status", "paper").stdout)
    deployed.cli("down", "paper")
