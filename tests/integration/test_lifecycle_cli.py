"""The lifecycle verbs on the lab VM through the runner wrapper: what cron and an operator see."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from ibgw_ops import tws_probe
from ibgw_ops.errors import ExitCode
from tests.conftest import CANARY
from tests.integration.conftest import Lab

pytestmark = pytest.mark.integration
IBGW_OPS = str(Path(sys.executable).parent / "ibgw-ops")


def _processes() -> str:
    """Every process's command line, one per line."""
    return subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout


class Watcher(threading.Thread):
    """Reads every command line and every file under the runner's directories until stopped; keeps only where
    the canary showed up and proof that it looked at live runs."""

    def __init__(self, runs: Path) -> None:
        super().__init__(daemon=True)
        self.runs = runs
        self.leaks: list[str] = []
        self.saw_playbook = self.saw_run_file = False
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            processes = _processes()
            self.saw_playbook |= "ansible-playbook" in processes
            if CANARY in processes:
                self.leaks.append(processes)
            for path in list(self.runs.rglob("*")) if self.runs.exists() else []:
                try:
                    text = path.read_text(errors="replace") if path.is_file() else ""
                except OSError:
                    continue
                self.saw_run_file |= bool(text)
                if CANARY in text or CANARY in str(path):
                    self.leaks.append(str(path))
            time.sleep(0.1)


def status_rows(lab: Lab) -> dict[str, dict]:
    result = lab.cli("status", "--json")
    return {row["instance"]: row for row in json.loads(result.stdout)}


def api_client_on_vm(lab: Lab, port: int) -> str:
    """What an API client (client id 7) on the VM gets right now: state and accounts."""
    script = Path(tws_probe.__file__).read_text() + (
        f"\nr = probe('127.0.0.1', {port}, client_id=7)\nprint(r.state, ','.join(r.accounts))\n")
    return lab.cli("lab", "ssh", "--", "python3", "-", stdin=script).stdout.strip()


def from_cron(env: dict[str, str], verb: str) -> subprocess.CompletedProcess[str]:
    """Run a verb with nothing in the environment but ``env`` (``env -i``, as cron does)."""
    return subprocess.run(["env", "-i", *(f"{k}={v}" for k, v in env.items()), IBGW_OPS, verb],
                          capture_output=True, text=True, check=False, timeout=600)


def paper_container(lab: Lab) -> str:
    return lab.ssh("docker ps --all --filter name=^ibgw-paper$ --format '{{.State}}'").strip()


def test_paper_up_from_cron_is_silent_and_ready_then_paper_down_stops_it(deployed):
    cron_env = {"PATH": "/usr/bin:/bin", "IBGW_OPS_INVENTORY": str(deployed.inventory),
                "IBGW_OPS_STATE_DIR": str(deployed.state)}
    up = from_cron(cron_env, "paper-up")
    assert (up.returncode, up.stdout, up.stderr) == (0, "", "")
    assert api_client_on_vm(deployed, 4002) == "ready DU1234567"
    paper = status_rows(deployed)["paper"]
    assert paper["container"] == "running" and paper["probe"] == "ready"
    assert paper["accounts"] == ["DU1234567"] and paper["uptime_seconds"] >= 0
    down = from_cron(cron_env, "paper-down")
    assert (down.returncode, down.stdout, down.stderr) == (0, "", "")
    assert paper_container(deployed) == "exited"
    assert status_rows(deployed)["paper"]["probe"] == "refused"


def test_paper_run_propagates_the_exit_code_and_takes_paper_down(deployed):
    failed = deployed.cli("paper-run", "--", "sh", "-c", 'test "$IBGW_API_PORT" = 4002 && exit 1', check=False)
    assert failed.returncode == 1, failed.stderr
    assert paper_container(deployed) == "exited"
    passed = deployed.cli("paper-run", "--", "true", check=False)
    assert passed.returncode == 0, passed.stderr
    assert paper_container(deployed) == "exited"


def test_paper_run_killed_with_sigterm_takes_paper_down(deployed):
    process = subprocess.Popen([IBGW_OPS, "paper-run", "--", "sleep", "600"], env=deployed.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while "sleep 600" not in _processes().splitlines():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=300)
    assert process.returncode == ExitCode.INTERRUPTED, err
    assert "interrupted by SIGTERM; paper is down" in err
    assert paper_container(deployed) == "exited"
    assert "sleep 600" not in _processes().splitlines()


def test_up_with_wrong_credentials_fails_clearly_without_a_restart_loop(deployed):
    extra = json.dumps({"ib_gateway_extra_env": {"STANDIN_ACCEPT_USERID": "someone-else"}})
    deployed.converge("-e", extra)
    try:
        result = deployed.cli("up", "live", "--timeout", "60", check=False)
        assert result.returncode == ExitCode.NOT_READY
        assert "NOT READY: gateway live" in result.stderr and "Login failed" in result.stderr
        first = deployed.container("live")
        time.sleep(3)
        assert deployed.container("live") == first
        assert first.split()[1:] == ["exited", "0"]
    finally:
        deployed.converge()


def test_an_unreachable_host_exits_3_naming_it(deployed, tmp_path):
    hosts = deployed.host_vars()
    inventory = {"all": {"children": {"ibgw_gateways": {"hosts": {
        "ibgw-gone": {**hosts, "ansible_port": 1}}}}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    result = deployed.cli("-i", str(tmp_path / "hosts.yml"), "status", check=False)
    assert result.returncode == ExitCode.UNREACHABLE, result.stderr
    assert re.search(r"ibgw-gone: .*Connection refused", result.stderr), result.stderr


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


def test_the_canary_password_stays_out_of_runs_output_and_processes(deployed):
    credentials = deployed.state / "lab" / "credentials.yml"
    original = credentials.read_text()
    document = yaml.safe_load(original)
    document["ib_gateway_credentials"]["paper"]["password"] = CANARY
    credentials.write_text(yaml.safe_dump(document))
    watcher = Watcher(deployed.state / "runs")
    watcher.start()
    try:
        outputs = [deployed.cli(*verb, check=False) for verb in (
            ["deploy", "-vvv"], ["paper-up", "-vvv"], ["status", "-vvv"], ["logs", "paper", "-vvv"],
            ["paper-down", "-vvv"])]
    finally:
        watcher.stop.set()
        watcher.join()
        credentials.write_text(original)
        deployed.converge()
    assert [o.returncode for o in outputs] == [0] * 5, [o.stderr[-2000:] for o in outputs]
    assert watcher.saw_playbook and watcher.saw_run_file, "the watcher never saw a run in progress"
    for output in outputs:
        assert CANARY not in output.stdout + output.stderr
    assert watcher.leaks == []
    assert not list((deployed.state / "runs").iterdir())


def test_status_and_logs_show_a_running_gateway(deployed):
    assert deployed.cli("up", "paper").stdout == ""
    table = deployed.cli("status", "paper").stdout
    assert re.search(rf"{deployed.name}\s+paper\s+paper\s+running\s+\d+m \d+s\s+ready\s+DU1234567", table), table
    logs = deployed.cli("logs", "paper", "-n", "5").stdout
    assert logs.startswith("== ") and len(logs.splitlines()) == 6
    deployed.cli("down", "paper")
