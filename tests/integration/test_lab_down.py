"""``lab down`` removes everything the lab made except the cached images, and may run twice."""

from __future__ import annotations

import pytest

from tests.support.lab import Lab

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


def test_a_foreign_container_with_the_lab_name_is_never_adopted(tmp_path, docker_client):
    lab = Lab("ibgw-test-foreign", tmp_path / "state")
    image = docker_client.images.list(name="ibgw-lab/debian-base")[0]
    foreign = docker_client.containers.create(image.id, name=lab.name, command=["true"])
    try:
        result = lab.cli("lab", "up", check=False)
        assert result.returncode == 2
        assert "did not create" in result.stderr and "IBGW_OPS_LAB_NAME" in result.stderr
        foreign.reload()
        assert foreign.status == "created"
    finally:
        foreign.remove(force=True)
