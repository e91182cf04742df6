"""A lab VM of the tests' own (own name, own state directory), created once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
import yaml

TEST_LAB = "ibgw-test-lab"


@dataclass
class Lab:
    """Handle on a lab VM for tests: run the CLI against it, run commands on it."""

    name: str
    state: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "IBGW_OPS_STATE_DIR": str(self.state), "IBGW_OPS_LAB_NAME": self.name}

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "ibgw_ops", *args], env=self.env,
                                capture_output=True, text=True, check=False, timeout=900)
        if check and result.returncode != 0:
            raise AssertionError(f"ibgw-ops {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    def ssh(self, command: str) -> str:
        return self.cli("lab", "ssh", "--", command).stdout

    @property
    def inventory(self) -> Path:
        return self.state / "lab" / "inventory"

    def host_vars(self) -> dict[str, str]:
        document = yaml.safe_load((self.inventory / "hosts.yml").read_text())
        return dict(document["all"]["children"]["ibgw_gateways"]["hosts"][self.name])


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    return docker.from_env()


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    handle = Lab(TEST_LAB, tmp_path_factory.mktemp("state"))
    handle.cli("lab", "down")
    handle.cli("lab", "up")
    yield handle
    handle.cli("lab", "down")
