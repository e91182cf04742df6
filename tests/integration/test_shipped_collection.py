"""The collection as an Ansible user installs it: built with ansible-galaxy, installed, and run on the lab with
plain ansible-playbook from a directory that knows nothing of the checkout."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ibgw_ops.paths import ansible_command
from tests.support.lab import Lab
from tests.support.layout import COLLECTION_DIR, COLLECTIONS_PATH

pytestmark = [pytest.mark.integration, pytest.mark.configured_vm]


def galaxy(work: Path, *args: str) -> None:
    done = subprocess.run([ansible_command("ansible-galaxy"), "collection", *args], cwd=work, capture_output=True,
                          text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with only an ansible.cfg whose collections path holds the installed artifact."""
    work = tmp_path_factory.mktemp("collection")
    galaxy(work, "build", str(COLLECTION_DIR), "--output-path", str(work))
    galaxy(work, "install", "-p", str(work / "collections"), str(next(work.glob("ibgw_ops-gateway-*.tar.gz"))))
    (work / "ansible.cfg").write_text(f"[defaults]\ncollections_path = {work / 'collections'}\n")
    return work


def run(lab: Lab, work: Path, playbook: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**lab.env, "ANSIBLE_CONFIG": str(work / "ansible.cfg"), "ANSIBLE_HOST_KEY_CHECKING": "True"}
    return subprocess.run([ansible_command("ansible-playbook"), "-i", str(lab.inventory), playbook, *args],
                          cwd=work, env=env, capture_output=True, text=True, check=False, timeout=900)


def test_the_installed_collection_configures_and_runs_the_lab(deployed, installed):
    where = subprocess.run([ansible_command("ansible-galaxy"), "collection", "list", "ibgw_ops.gateway"],
                           cwd=installed, env={**deployed.env, "ANSIBLE_CONFIG": str(installed / "ansible.cfg")},
                           capture_output=True, text=True, check=False)
    assert str(installed / "collections") in where.stdout and str(COLLECTIONS_PATH) not in where.stdout
    site = run(deployed, installed, "ibgw_ops.gateway.site")
    assert site.returncode == 0, site.stdout + site.stderr
    # The VM was configured from the checkout: the same files from the artifact change nothing.
    assert "changed=0" in site.stdout.split("PLAY RECAP")[1], site.stdout
    status = run(deployed, installed, "ibgw_ops.gateway.status", "-e", "ib_gateway_target=paper")
    assert status.returncode == 0, status.stdout + status.stderr
    assert '"instance": "paper"' in status.stdout
