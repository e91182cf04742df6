"""Lab VMs for the integration tests and the fault matrix: a handle to drive one, and how to create a fresh one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
import yaml

from ibgw_ops.lab.vm import LabFiles, controller_address, ssh_options
from ibgw_ops.paths import ansible_command
from tests.support.layout import PLAYBOOKS, ROOT

# Lab VM names; a second checkout working at the same time sets its own (IBGW_TEST_LAB_PREFIX=ibgw-mine).
LAB_PREFIX = os.environ.get("IBGW_TEST_LAB_PREFIX", "ibgw-test")
TEST_LAB = f"{LAB_PREFIX}-lab"
# Where the tests' shared SSH connections listen, one per VM address (a socket path must stay under 108 bytes).
SSH_CONTROL = os.path.join(tempfile.gettempdir(), "ibgw-test-ssh-%C")


@dataclass
class Lab:
    """Handle on a lab VM for tests: run the CLI against it, run commands on it."""

    name: str
    state: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "IBGW_OPS_STATE_DIR": str(self.state), "IBGW_OPS_LAB_NAME": self.name}

    def cli(self, *args: str, check: bool = True, stdin: str | None = None,
            env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "ibgw_ops", *args], env={**self.env, **(env_extra or {})},
                                input=stdin,
                                capture_output=True, text=True, check=False, timeout=900)
        if check and result.returncode != 0:
            raise AssertionError(f"ibgw-ops {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    def playbook(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a playbook with plain ansible-playbook from the checkout, as an SRE would: a file of playbooks/
        (``status.yml``) by its path, or the collection's playbook by its FQCN (``ibgw_ops.gateway.status``)."""
        playbook = str(PLAYBOOKS / name) if name.endswith(".yml") else name
        command = [ansible_command("ansible-playbook"), "-i", str(self.inventory), playbook, *args]
        return subprocess.run(command, cwd=ROOT, env={**self.env, "ANSIBLE_HOST_KEY_CHECKING": "True"},
                              capture_output=True, text=True, check=False, timeout=900)

    def converge(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Apply site.yml; fail the test when it fails."""
        result = self.playbook("site.yml", *args)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    def ssh(self, command: str) -> str:
        """Run ``command`` on the VM as ``ibgw-ops lab ssh`` logs in (the lab's key, its pinned host key), over one
        SSH connection the test's commands share: a Python start and a key exchange for each of the thousands of
        commands (most of them polls) cost the controller's two cores more than the commands themselves.

        An SSH failure (exit 255: a VM rebooted or recreated under the shared connection) is retried once on a new
        connection; the command's own exit codes are the test's.
        """
        argv = self._ssh_argv()
        for attempt in (1, 2):
            result = subprocess.run([*argv, command], capture_output=True, text=True, check=False, timeout=900)
            if result.returncode != 255 or attempt == 2:
                break
            self.disconnect()
        if result.returncode != 0:
            raise AssertionError(f"ssh {command!r} exited {result.returncode}:\n{result.stderr}")
        return result.stdout

    def _ssh_argv(self) -> list[str]:
        files = LabFiles(self.state / "lab")
        shared = {"ControlMaster": "auto", "ControlPath": SSH_CONTROL, "ControlPersist": "120",
                  "ServerAliveInterval": "5", "ServerAliveCountMax": "3"}
        options = [word for key, value in shared.items() for word in ("-o", f"{key}={value}")]
        return ["ssh", *ssh_options(files), *options, "-i", str(files.client_key),
                f"root@{self.host_vars()['ansible_host']}"]

    def disconnect(self) -> None:
        """Close the shared SSH connection (before the VM goes away under it)."""
        *options, target = self._ssh_argv()
        subprocess.run([*options, "-O", "exit", target], capture_output=True, check=False, timeout=30)

    def reboot(self) -> None:
        """Restart the VM's container (a reboot that keeps the disk); return once 'lab up' reaches the VM again."""
        self.disconnect()
        docker.from_env().containers.get(self.name).restart(timeout=30)
        self.cli("lab", "up")

    def container(self, instance: str) -> str:
        """A gateway container's id, state and restart count (changes when it is recreated or restarted)."""
        return self.ssh(f"docker inspect --format '{{{{.Id}}}} {{{{.State.Status}}}} {{{{.RestartCount}}}}' "
                        f"ibgw-{instance}")

    @property
    def inventory(self) -> Path:
        return self.state / "lab" / "inventory"

    @property
    def controller(self) -> str:
        """This machine's address on the VM's network (the bridge's gateway): the Cloud Run egress that the
        firewall admits, and where the VM reaches the tests' receivers."""
        return controller_address(docker.from_env(), self.name)

    def host_settings(self, settings: dict | None) -> None:
        """Give the lab host variables of its own (over group_vars); None removes them."""
        path = self.inventory / "host_vars" / f"{self.name}.yml"
        if settings is None:
            path.unlink(missing_ok=True)
        else:
            path.parent.mkdir(exist_ok=True)
            path.write_text(yaml.safe_dump(settings))

    def use_settings(self, settings: dict | None) -> None:
        """``host_settings``, then apply site.yml."""
        self.host_settings(settings)
        self.cli("deploy")

    def configuration(self) -> str:
        """What site.yml decides, as checksums: the inventory's own files on the controller, and on the VM every
        file the roles write (Docker's and the firewall's settings, each gateway's project and secrets)."""
        controller = "".join(f"{path.relative_to(self.inventory)} {path.read_text()}"
                             for path in sorted(self.inventory.rglob("*.yml")))
        return controller + self.ssh(
            "find /etc/docker /etc/ibgw-ops /opt/ibgw -type f ! -path '*/settings/*' ! -name .lock "
            "! -name restart-pending ! -name signed-in-at ! -name operator-stopped ! -name 'previous-container.*' "
            "-exec sha256sum {} + 2>/dev/null | sort")

    def container_state(self, instance: str) -> str:
        """The gateway container's state (running, exited, ...), "" when there is none."""
        return self.ssh(f"docker ps --all --filter name=^ibgw-{instance}$ --format '{{{{.State}}}}'").strip()

    def container_id(self, instance: str) -> str:
        return self.container(instance).split()[0]

    def deadman_timers(self) -> str:
        """The dead-man switch's units on the VM, "" when none is armed."""
        return self.ssh("systemctl list-units --all --no-legend 'ibgw-deadman-*' || true").strip()

    def status_rows(self, target: str = "all") -> dict[str, dict]:
        """``status --json`` by instance."""
        return {row["instance"]: row for row in json.loads(self.cli("status", target, "--json").stdout)}

    def keepsakes(self) -> set[str]:
        """What no fault may lose: a checksum line per configuration and secret file under /opt/ibgw, and a line
        per file of each settings directory (the gateway itself may rewrite those). Records that each start or stop
        rewrites (the previous container's, the sign-in's, the markers) are not configuration."""
        return set(self.ssh(
            "cd /opt/ibgw && find . -path '*/settings/*' -type f -printf 'settings %p\\n' && "
            "find . -type f ! -path '*/settings/*' ! -name .lock ! -name restart-pending ! -name signed-in-at "
            "! -name operator-stopped ! -name 'previous-container.*' -exec sha256sum {} +").splitlines())

    def host_vars(self) -> dict[str, str]:
        document = yaml.safe_load((self.inventory / "hosts.yml").read_text())
        return dict(document["all"]["children"]["ibgw_gateways"]["hosts"][self.name])


def credentials_file(directory: Path, **entries: dict[str, str]) -> Path:
    """A credentials file for ib_gateway_credentials_file (mode 0600, as the role requires)."""
    path = directory / "credentials.yml"
    path.write_text(yaml.safe_dump({"ib_gateway_credentials": entries}))
    path.chmod(0o600)
    return path


def recap_changed(output: str) -> int:
    """The ``changed=`` count of a playbook run's recap."""
    match = re.search(r"changed=(\d+)", output.split("PLAY RECAP", 1)[-1])
    assert match, output
    return int(match.group(1))


def fresh_lab(name: str, factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A lab VM created from scratch for a group of tests, removed afterwards."""
    handle = Lab(name, factory.mktemp(name))
    handle.cli("lab", "down")
    handle.cli("lab", "up")
    yield handle
    handle.cli("lab", "down")


def wait_for(what: str, check: Callable[[], bool], timeout: float, interval: float = 1.0) -> float:
    """Poll ``check()`` until it is true; return the monotonic time it became true."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        time.sleep(interval)
    return time.monotonic()
