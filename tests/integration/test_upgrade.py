"""The upgrade playbook with plain ansible-playbook on the lab VM: the new image first, then the switch."""

from __future__ import annotations

import pytest

from tests.support.lab import Lab

pytestmark = [pytest.mark.integration, pytest.mark.configured_vm]

# What an upgrade must leave alone: the settings directory, the secrets, and (when it fails) everything.
FINGERPRINT = ("cd /opt/ibgw/paper && find settings secrets -type f -exec sha256sum {} + | sort;"
               " cat compose.yaml; cat rollback-image 2>/dev/null;"
               " docker inspect --format '{{.Id}}' ibgw-paper 2>&1; true")


def paper_image(lab: Lab) -> str:
    return lab.ssh("docker inspect --format '{{.Config.Image}}' ibgw-paper").strip()


def test_a_failing_pull_changes_nothing(deployed):
    before = deployed.ssh(FINGERPRINT)
    failed = deployed.playbook("upgrade.yml", "-e", "ib_gateway_target=paper",
                               "-e", "ib_gateway_image=ibgw-lab/ib-gateway:10.99.1a")
    assert failed.returncode != 0, failed.stdout
    assert deployed.ssh(FINGERPRINT) == before


def test_upgrade_records_the_rollback_point_and_paper_starts_on_the_new_image(deployed):
    assert deployed.playbook("start.yml", "-e", "ib_gateway_target=paper").returncode == 0
    assert deployed.playbook("stop.yml", "-e", "ib_gateway_target=paper").returncode == 0
    old = paper_image(deployed)
    new = f"{old.rpartition(':')[0]}:10.99.1b"
    deployed.ssh(f"docker tag {old} {new}")
    settings = deployed.ssh("cd /opt/ibgw/paper && find settings secrets -type f -exec sha256sum {} + | sort")
    upgraded = deployed.playbook("upgrade.yml", "-e", "ib_gateway_target=paper", "-e", f"ib_gateway_image={new}")
    try:
        assert upgraded.returncode == 0, upgraded.stdout
        assert deployed.ssh("cat /opt/ibgw/paper/rollback-image").strip() == old
        started = deployed.playbook("start.yml", "-e", "ib_gateway_target=paper", "-e", f"ib_gateway_image={new}")
        assert started.returncode == 0, started.stdout
        assert paper_image(deployed) == new
        assert deployed.ssh("cd /opt/ibgw/paper && find settings secrets -type f -exec sha256sum {} + | sort") \
            == settings
    finally:
        deployed.playbook("stop.yml", "-e", "ib_gateway_target=paper")
        deployed.ssh(f"rm -f /opt/ibgw/paper/rollback-image; docker image rm {new}")
        deployed.converge()
