"""A lab VM of the tests' own (own name, own state directory), created once per session."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
import yaml

from ibgw_ops.paths import ansible_command

TEST_LAB = "ibgw-test-lab"


@dataclass
class Lab:
    """Handle on a lab VM for tests: run the CLI against it, run commands on it."""

    name: str
    state: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "IBGW_OPS_STATE_DIR": str(self.state), "IBGW_OPS_LAB_NAME": self.name}

    def cli(self, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "ibgw_ops", *args], env=self.env, input=stdin,
                                capture_output=True, text=True, check=False, timeout=900)
        if check and result.returncode != 0:
            raise AssertionError(f"ibgw-ops {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    def playbook(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a playbook with plain ansible-playbook, as an SRE would."""
        root = Path(__file__).parents[2]
        command = [ansible_command("ansible-playbook"), "-i", str(self.inventory),
                   str(root / "playbooks" / name), *args]
        return subprocess.run(command, cwd=root, env={**self.env, "ANSIBLE_HOST_KEY_CHECKING": "True"},
                              capture_output=True, text=True, check=False, timeout=900)

    def converge(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Apply site.yml; fail the test when it fails."""
        result = self.playbook("site.yml", *args)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    def ssh(self, command: str) -> str:
        return self.cli("lab", "ssh", "--", command).stdout

    def container(self, instance: str) -> str:
        """A gateway container's id, state and restart count (changes when it is recreated or restarted)."""
        return self.ssh(f"docker inspect --format '{{{{.Id}}}} {{{{.State.Status}}}} {{{{.RestartCount}}}}' "
                        f"ibgw-{instance}")

    @property
    def inventory(self) -> Path:
        return self.state / "lab" / "inventory"

    def host_vars(self) -> dict[str, str]:
        document = yaml.safe_load((self.inventory / "hosts.yml").read_text())
        return dict(document["all"]["children"]["ibgw_gateways"]["hosts"][self.name])


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    return docker.from_env()


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


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A fresh VM as a cloud provider hands it over: nothing installed by the roles."""
    yield from fresh_lab(TEST_LAB, tmp_path_factory)


@pytest.fixture(scope="session")
def converged_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A VM of its own for tests that apply the roles (shared by the role tests)."""
    yield from fresh_lab("ibgw-test-roles", tmp_path_factory)


@pytest.fixture(scope="module")
def deployed(converged_lab: Lab) -> Lab:
    """The roles VM with site.yml applied with the lab's defaults, and every gateway stopped."""
    converged_lab.converge()
    stopped = converged_lab.playbook("stop.yml")
    assert stopped.returncode == 0, stopped.stdout
    return converged_lab
