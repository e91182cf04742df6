"""Upgrade and rollback through the CLI on the lab VM, with two stand-in images of different ids.

The lab's group_vars name the image through a template (refused by the inventory edit), so these tests give the
lab inventory a literal image and the instance list, as an operator's inventory would have, and put it back after.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from ibgw_ops.errors import ExitCode
from ibgw_ops.lab import images
from tests.support.lab import Lab, recap_changed

pytestmark = [pytest.mark.integration, pytest.mark.restarts]

# What an upgrade must leave alone: the settings directory and the secrets (byte for byte).
KEPT = "cd /opt/ibgw/paper && find settings secrets -type f -exec sha256sum {} + | sort"
# What a failing upgrade must leave alone besides: the project, the rollback point and the container.
UNCHANGED = (f"{KEPT}; cat compose.yaml; cat rollback-image 2>/dev/null;"
             " docker inspect --format '{{.Id}} {{.Image}}' ibgw-paper 2>&1; true")
VARIANT_TAG = "10.99.1b"


def kept(lab: Lab) -> str:
    return lab.ssh(KEPT)


def running_image_id(lab: Lab, instance: str) -> str:
    return lab.ssh(f"docker inspect --format '{{{{.Image}}}}' ibgw-{instance}").strip()


def image_id(lab: Lab, reference: str) -> str:
    return lab.ssh(f"docker image inspect --format '{{{{.Id}}}}' {reference}").strip()


@pytest.fixture(scope="module")
def operator_inventory(deployed: Lab) -> Iterator[Path]:
    """The lab's group_vars with a literal image and the instance list (comments kept); restored afterwards."""
    path = deployed.inventory / "group_vars" / "ibgw_gateways.yml"
    original = path.read_text()
    standin = deployed.host_vars()["ibgw_lab_standin_image"]
    path.write_text(original.replace('ib_gateway_image: "{{ ibgw_lab_standin_image }}"',
                                     f"ib_gateway_image: {standin}  # the stand-in\nib_gateway_instances:\n"
                                     "  - name: live\n    mode: live\n  - name: paper  # shares the login\n"
                                     "    mode: paper"))
    yield path
    path.write_text(original)
    deployed.ssh("rm -f /opt/ibgw/*/rollback-image")
    deployed.converge()


def load_variant(lab: Lab, tag: str) -> str:
    """A stand-in tag with an id of its own, loaded into the VM's Docker (the lab has no registry)."""
    reference = images.ensure_standin_variant(docker.from_env(), tag)
    saved = subprocess.run(["docker", "save", reference], capture_output=True, check=True).stdout
    subprocess.run(["docker", "exec", "-i", lab.name, "docker", "load", "--quiet"], input=saved,
                   capture_output=True, check=True)
    return reference


@pytest.fixture(scope="module")
def variant(deployed: Lab) -> str:
    return load_variant(deployed, VARIANT_TAG)


def gateway_images(lab: Lab) -> set[str]:
    return set(lab.ssh("docker image ls --format '{{.Repository}}:{{.Tag}}' ibgw-lab/ib-gateway").split())


@pytest.mark.parametrize(("reference", "code", "said"), [
    ("ibgw-lab/ib-gateway:10.99.1a", ExitCode.FAILED, "Pull the images that are still missing"),
    ("ibgw-lab/ib-gateway:latest", ExitCode.BAD_INPUT, "floating tags latest/stable are refused"),
])
def test_an_image_that_cannot_be_pulled_or_is_refused_changes_nothing(deployed, operator_inventory, reference, code,
                                                                     said):
    before, inventory = deployed.ssh(UNCHANGED), operator_inventory.read_text()
    failed = deployed.cli("upgrade", "paper", "--image", reference, check=False)
    assert failed.returncode == code, failed.stderr
    assert said in failed.stderr
    assert deployed.ssh(UNCHANGED) == before
    assert operator_inventory.read_text() == inventory


def test_the_upgrade_playbook_to_the_image_already_set_changes_nothing(deployed, operator_inventory):
    standin = deployed.host_vars()["ibgw_lab_standin_image"]
    before = deployed.ssh(UNCHANGED)
    for _ in range(2):
        again = deployed.playbook("upgrade.yml", "-e", "ib_gateway_target=paper",
                                  "-e", f"ib_gateway_upgrade_image={standin}")
        assert again.returncode == 0, again.stdout
        assert recap_changed(again.stdout) == 0, again.stdout
    assert deployed.ssh(UNCHANGED) == before


def test_upgrade_then_rollback_switch_paper_by_image_id_and_keep_settings_and_secrets(deployed, operator_inventory,
                                                                                    variant):
    deployed.cli("paper-up")
    deployed.cli("paper-down")
    old_id, settings, inventory = running_image_id(deployed, "paper"), kept(deployed), operator_inventory.read_text()
    new_id = image_id(deployed, variant)
    assert new_id != old_id
    standin = deployed.host_vars()["ibgw_lab_standin_image"]
    stale = load_variant(deployed, "10.98.1z")

    deployed.cli("upgrade", "paper", "--image", variant)
    # Pruned: the image no instance, container or rollback point needs; live's stays.
    assert gateway_images(deployed) == {standin, variant}
    assert standin in deployed.ssh("grep image: /opt/ibgw/live/compose.yaml")
    assert operator_inventory.read_text() == inventory.replace(
        "  - name: paper  # shares the login\n", f"  - name: paper  # shares the login\n    image: {variant}\n")
    point = json.loads(deployed.ssh("cat /opt/ibgw/paper/rollback-image"))
    assert (point["reference"], point["image_id"]) == (standin, old_id)
    row = deployed.status_rows("paper")["paper"]
    assert (row["image_configured"], row["image_pending_id"]) == (variant, new_id)
    deployed.cli("paper-up")
    try:
        assert running_image_id(deployed, "paper") == new_id
    finally:
        deployed.cli("paper-down")
    assert kept(deployed) == settings

    deployed.cli("rollback", "paper")
    assert operator_inventory.read_text() == inventory.replace(
        "  - name: paper  # shares the login\n", f"  - name: paper  # shares the login\n    image: {standin}\n")
    assert json.loads(deployed.ssh("cat /opt/ibgw/paper/rollback-image"))["image_id"] == new_id
    deployed.cli("paper-up")
    try:
        assert running_image_id(deployed, "paper") == old_id
    finally:
        deployed.cli("paper-down")
    assert kept(deployed) == settings
    assert gateway_images(deployed) == {standin, variant}
    assert stale not in gateway_images(deployed)


def test_live_shows_the_upgrade_pending_and_runs_it_from_the_next_sign_in(deployed, operator_inventory, variant):
    deployed.cli("up", "live")
    try:
        container, old_id = deployed.container_id("live"), running_image_id(deployed, "live")
        standin = deployed.host_vars()["ibgw_lab_standin_image"]
        deployed.cli("upgrade", "live", "--image", variant)
        assert f"image: {variant}" in operator_inventory.read_text()
        # The running live gateway is left alone (no 2FA login): same container, same image, until the sign-in.
        assert (deployed.container_id("live"), running_image_id(deployed, "live")) == (container, old_id)
        table = deployed.cli("status", "live").stdout
        assert (f"live on {deployed.name}: upgrade pending: {standin.rpartition(':')[2]} → {VARIANT_TAG} "
                f"(running image id {old_id}, pending image id {image_id(deployed, variant)}); applies at the next "
                "live-signin") in table
        deployed.cli("live-signin", "--timeout", "120")
        assert running_image_id(deployed, "live") == image_id(deployed, variant)
        assert "upgrade pending" not in deployed.cli("status", "live").stdout
    finally:
        deployed.cli("down", "live", "--force")
