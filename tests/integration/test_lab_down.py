"""``lab down`` removes everything the lab made except the cached images, and may run twice."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Lab

pytestmark = pytest.mark.integration


def test_lab_down_leaves_no_container_network_volume_or_file(tmp_path, docker_client):
    lab = Lab("ibgw-test-lab-down", tmp_path / "state")
    lab.cli("lab", "up")
    assert lab.ssh("hostname").strip() == lab.name
    lab.cli("lab", "down")
    selector = {"label": f"io.ibgw-ops.lab={lab.name}"}
    assert docker_client.containers.list(all=True, filters=selector) == []
    assert docker_client.networks.list(filters=selector) == []
    assert docker_client.volumes.list(filters=selector) == []
    assert not (lab.state / "lab").exists()
    assert docker_client.images.list(name="ibgw-lab/debian-vm")
    lab.cli("lab", "down")
    status = lab.cli("lab", "status", check=False)
    assert status.returncode == 3
    assert "absent" in status.stdout
