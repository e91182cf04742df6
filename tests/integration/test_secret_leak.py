"""The secret-leak scan: a fresh canary password goes through every verb at the highest verbosity on the roles VM,
and turns up nowhere but the gateways' secret files. The alert URLs (the webhook, the Apprise URLs, the heartbeat)
carry the canary too, and turn up nowhere but their root-only files.

While the verbs run, watchers poll every 0.1 s: on the controller every command line, the environment of the CLI's
processes and every file under the runner's directory (state dir ``runs/``) and ``~/.ansible``; on the VM every
process's command line and environment and the files in Ansible's remote temporary directory. Afterwards: the CLI's
output; every file under the state directory and ``~/.ansible``; every file on the VM where the roles, Ansible,
Docker or systemd write, but /opt/ibgw/*/secrets/*; both containers' ``docker inspect`` and ``docker logs``; the VM's
journal with every field.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from ibgw_ops.errors import ExitCode
from tests.integration.leaks import VmWatcher, Watcher, files_with, lines_with
from tests.support.lab import Lab

pytestmark = [pytest.mark.integration, pytest.mark.reliability]
VERBOSE = "-vvvv"
# deploy --check first: its --diff would show the secret files that are about to change.
VERBS = (("deploy", "--check"), ("deploy",), ("up", "paper"), ("status",), ("logs", "paper"), ("restart", "paper"),
         ("down", "paper"))
# Live never logs in (its 2FA is never approved): the failure path runs too, quoting the container's last log lines.
FAILING = ("up", "live", "--timeout", "5")
SECRET_FILE = re.compile(r"/opt/ibgw/[^/]+/secrets/[^/]+")
ALERT_FILES = ("/opt/ibgw/alert-webhook", "/opt/ibgw/alert-apprise", "/opt/ibgw/heartbeat-url")
VM_PLACES = "/opt/ibgw /root /tmp /var/tmp /etc /run /var/log /var/lib/docker/containers /var/lib/ibgw-ops"
CONTAINERS = ("ibgw-live", "ibgw-paper")
AFTER = "after the runs"


@dataclass
class Scan:
    """Where the canary showed up (place: during which verb) and the VM's files holding it."""

    leaks: dict[str, str]
    holders: list[str]
    paper_secret_mode: list[str]
    alert_file_modes: list[str]


def on_vm(lab: Lab, command: str, stdin: str = "") -> str:
    """Run ``command`` on the VM (anything the secret is in goes through stdin, never a command line)."""
    result = subprocess.run([sys.executable, "-m", "ibgw_ops", "lab", "ssh", "--", command], env=lab.env,
                            input=stdin.encode(), capture_output=True, check=False, timeout=300)
    assert result.returncode == 0, f"{command}: {result.stderr.decode(errors='replace')}"
    return result.stdout.decode(errors="replace")


def use_canary(lab: Lab, directory: Path) -> tuple[str, Path]:
    """A fresh password for both gateways (with the lab's user ids) in a credentials file named by the lab host's own
    variables, which also keep live from ever logging in; returns it."""
    canary = f"canary-{secrets.token_hex(8)}"
    lab_entries = yaml.safe_load((lab.state / "lab" / "credentials.yml").read_text())["ib_gateway_credentials"]
    credentials = directory / "credentials.yml"
    with os.fdopen(os.open(credentials, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        yaml.safe_dump({"ib_gateway_credentials": {
            name: {"user_id": entry["user_id"], "password": canary} for name, entry in lab_entries.items()}}, handle)
    lab.host_settings({
        "ib_gateway_credentials_file": str(credentials),
        "ib_gateway_instances": [{"name": "live", "mode": "live", "extra_env": {"STANDIN_NEVER_LOGIN": "yes"}},
                                 {"name": "paper", "mode": "paper"}],
        # Nothing listens there: the watchdog's deliveries fail and are spooled, which must not leak them either.
        "ib_gateway_alert_webhook": f"http://127.0.0.1:9/{canary}",
        "ib_gateway_alert_urls": [f"json://127.0.0.1:9/{canary}"],
        "ib_gateway_heartbeat_url": f"http://127.0.0.1:9/{canary}"})
    return canary


def run_watched(lab: Lab, canary: str) -> dict[str, str]:
    """Run the verbs under both watchers; check that they ran as planned and were seen; return what was found."""
    ansible_home = Path.home() / ".ansible"
    here, there = Watcher(canary, lab.state / "runs", ansible_home), VmWatcher(lab, canary)
    here.start()
    there.start()
    try:
        outputs = {}
        for verb in (*VERBS, FAILING):
            here.phase = there.phase = " ".join((*verb, VERBOSE))
            outputs[here.phase] = lab.cli(*verb, VERBOSE, check=False)
    finally:
        here.finish()
        there.finish()
    expected = {phase: 0 for phase in outputs} | {" ".join((*FAILING, VERBOSE)): ExitCode.TWOFA_TIMEOUT}
    codes = {verb: output.returncode for verb, output in outputs.items()}
    assert codes == expected, {verb: output.stderr[-3000:] for verb, output in outputs.items()
                               if output.returncode != expected[verb]}
    assert here.errors == [], here.errors
    assert here.saw_playbook and here.saw_run_file, "the controller's watcher never saw a run in progress"
    assert there.snapshots > 100 and any("standin_gateway" in command for command in there.commands), (
        f"the VM's watcher never saw a gateway running ({there.snapshots} snapshots)")
    assert not list((lab.state / "runs").iterdir()), "a run directory was left behind"
    found = {f"ibgw-ops {verb} {stream}: {line}": verb for verb, output in outputs.items()
             for stream in ("stdout", "stderr") for line in lines_with(canary, getattr(output, stream))}
    # The alert URLs' one place on the controller is the inventory that sets them (vault-encrypted in production).
    source = str(lab.inventory / "host_vars" / f"{lab.name}.yml")
    return found | here.leaks | there.leaks | dict.fromkeys(
        (f"controller file {path}" for path in files_with(canary, lab.state, ansible_home) if path != source), AFTER)


def scan_vm(lab: Lab, canary: str) -> tuple[dict[str, str], list[str]]:
    """The canary in the VM's files, containers and journal; returns the places and the files holding it."""
    holders = on_vm(lab, f"grep -rlF -D skip -f - {VM_PLACES} || true", stdin=canary).splitlines()
    inspect = on_vm(lab, f"docker inspect {' '.join(CONTAINERS)}")
    logs = on_vm(lab, " && ".join(f"docker logs {name} 2>&1" for name in CONTAINERS))
    journal = on_vm(lab, "journalctl --no-pager --all -o verbose")  # -o cat's messages and every other field
    assert inspect.count('"Id"') == 2 and "IBC: Login attempt: 1" in logs and "ibgw-deadman-paper" in journal
    places = [f"VM file {path}" for path in holders if not SECRET_FILE.fullmatch(path) and path not in ALERT_FILES]
    for what, text in (("docker inspect", inspect), ("docker logs", logs), ("journal", journal)):
        places += [f"VM {what}: {line.strip()}" for line in lines_with(canary, text)]
    return dict.fromkeys(places, AFTER), holders


@pytest.fixture(scope="module")
def scan(deployed: Lab, tmp_path_factory: pytest.TempPathFactory) -> Scan:
    """One pass of the verbs with the canary, scanned; then the lab's own credentials and settings deployed again."""
    canary = use_canary(deployed, tmp_path_factory.mktemp("canary"))
    try:
        leaks = run_watched(deployed, canary)
        on_the_vm, holders = scan_vm(deployed, canary)
        mode = on_vm(deployed, "stat -c '%a %u' /opt/ibgw/paper/secrets/tws_password").split()
        alert_modes = on_vm(deployed, f"stat -c '%a %u' {' '.join(ALERT_FILES)}").split()
    finally:
        deployed.host_settings(None)
        deployed.converge()
    return Scan(leaks | on_the_vm, holders, mode, alert_modes)


def test_the_canary_is_the_gateways_password(scan):
    assert {"/opt/ibgw/paper/secrets/tws_password", "/opt/ibgw/live/secrets/tws_password"} <= set(scan.holders)
    assert scan.paper_secret_mode == ["400", "1000"]


def test_the_alert_urls_are_in_their_root_only_files(scan):
    assert set(ALERT_FILES) <= set(scan.holders)
    assert scan.alert_file_modes == ["400", "0"] * len(ALERT_FILES)


def test_the_canary_turns_up_nowhere_else(scan):
    """Not in Ansible's temporary files either: the role writes secret files with ibgw_secret_file, not copy."""
    assert scan.leaks == {}, "\n".join(f"{where} ({when})" for where, when in scan.leaks.items())
