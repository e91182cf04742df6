"""The inventory edit of upgrade and rollback: the one line naming the image changes, every other byte stays."""

from __future__ import annotations

from pathlib import Path

import pytest

from ibgw_ops import image_setting
from ibgw_ops.errors import BadInput, ExitCode, OpsError
from ibgw_ops.inventory import host_vars

HOSTS = """\
all:
  children:
    ibgw_gateways:
      hosts:
        gw1:
          ansible_host: 10.0.0.5   # the VM
"""
GROUP_VARS = """\
---
# Gateway settings, kept by the operator.
ib_gateway_image: "gnzsnz/ib-gateway:10.45.1j"   # pinned; see the runbook

ib_gateway_instances:
  - name: live    # the dedicated user
    mode: live
  - name: paper
    # shares its login with the trader
    mode: paper
ib_gateway_protected_window: {}
"""
NEW = "gnzsnz/ib-gateway:10.50.1d@sha256:" + "d" * 64


def write(tmp_path: Path, group_vars: str = GROUP_VARS, hosts: str = HOSTS) -> Path:
    (tmp_path / "group_vars").mkdir(exist_ok=True)
    (tmp_path / "hosts.yml").write_text(hosts)
    (tmp_path / "group_vars" / "ibgw_gateways.yml").write_text(group_vars)
    return tmp_path


def edit(inventory: Path, target: str, images: dict[str, str]) -> list[str]:
    return image_setting.plan(inventory, host_vars(inventory), target, NEW).apply(images)


def test_upgrading_every_instance_changes_only_the_shared_value(tmp_path):
    inventory = write(tmp_path)
    shown = edit(inventory, "all", {"live": NEW, "paper": NEW})
    assert (inventory / "group_vars" / "ibgw_gateways.yml").read_text() == GROUP_VARS.replace(
        '"gnzsnz/ib-gateway:10.45.1j"', f'"{NEW}"')
    assert (inventory / "hosts.yml").read_text() == HOSTS
    assert shown == [f"{inventory}/group_vars/ibgw_gateways.yml: ib_gateway_image: {NEW}"]


def test_upgrading_one_instance_gives_it_its_own_image_line(tmp_path):
    inventory = write(tmp_path)
    edit(inventory, "paper", {"paper": NEW})
    assert (inventory / "group_vars" / "ibgw_gateways.yml").read_text() == GROUP_VARS.replace(
        "  - name: paper\n", f"  - name: paper\n    image: {NEW}\n")
    # The next upgrade of paper changes that line, and an upgrade of all then changes both.
    edit(inventory, "paper", {"paper": "gnzsnz/ib-gateway:10.50.1e"})
    edit(inventory, "all", {"live": "gnzsnz/ib-gateway:10.51.1a", "paper": "gnzsnz/ib-gateway:10.51.1a"})
    assert (inventory / "group_vars" / "ibgw_gateways.yml").read_text() == GROUP_VARS.replace(
        "  - name: paper\n", "  - name: paper\n    image: gnzsnz/ib-gateway:10.51.1a\n").replace(
        '"gnzsnz/ib-gateway:10.45.1j"', '"gnzsnz/ib-gateway:10.51.1a"')


def test_a_host_variable_in_the_hosts_file_is_edited_there(tmp_path):
    hosts = HOSTS + "          ib_gateway_image: 'gnzsnz/ib-gateway:10.45.1j'\n"
    inventory = write(tmp_path, GROUP_VARS.replace('ib_gateway_image: "gnzsnz/ib-gateway:10.45.1j"   # pinned; '
                                                   'see the runbook\n', ""), hosts)
    edit(inventory, "all", {"live": NEW, "paper": NEW})
    assert (inventory / "hosts.yml").read_text() == HOSTS + f"          ib_gateway_image: '{NEW}'\n"


@pytest.mark.parametrize(("group_vars", "problem"), [
    (GROUP_VARS.replace('"gnzsnz/ib-gateway:10.45.1j"', '"{{ lab_image }}"') + "lab_image: i:10.45.1j\n",
     "ib_gateway_image is templated, vault-encrypted or set again elsewhere"),
    (GROUP_VARS.replace('"gnzsnz/ib-gateway:10.45.1j"', "!vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162\n"),
     "ib_gateway_image is templated, vault-encrypted or set again elsewhere"),
    (GROUP_VARS.replace("  - name: paper\n", "  - {name: paper, mode: paper}\n").replace(
        "    # shares its login with the trader\n    mode: paper\n", ""),
     "the entry of paper in ib_gateway_instances is not a block mapping this edit can change"),
])
def test_a_value_that_cannot_be_edited_safely_is_refused_naming_the_line(tmp_path, group_vars, problem):
    inventory = write(tmp_path, group_vars)
    with pytest.raises(BadInput) as refused:
        image_setting.plan(inventory, host_vars(inventory), "all" if "ib_gateway_image is" in problem else "paper",
                           NEW)
    assert refused.value.code == ExitCode.BAD_INPUT
    assert problem in str(refused.value)
    assert f"{inventory}/group_vars/ibgw_gateways.yml:" in str(refused.value)
    assert (inventory / "group_vars" / "ibgw_gateways.yml").read_text() == group_vars


def test_a_value_set_in_several_places_is_refused_naming_each(tmp_path):
    inventory = write(tmp_path)
    (inventory / "host_vars").mkdir()
    (inventory / "host_vars" / "gw1.yml").write_text("ib_gateway_image: gnzsnz/ib-gateway:10.46.1a\n")
    with pytest.raises(BadInput) as refused:
        image_setting.plan(inventory, host_vars(inventory), "all", NEW)
    message = str(refused.value)
    assert "ib_gateway_image is defined in several places" in message
    assert "group_vars/ibgw_gateways.yml:3: ib_gateway_image:" in message
    assert "host_vars/gw1.yml:1: ib_gateway_image: gnzsnz/ib-gateway:10.46.1a" in message
    assert f"change that line by hand to the reference {NEW}" in message


def test_the_role_default_is_refused_with_the_line_to_add(tmp_path):
    inventory = write(tmp_path, "ib_gateway_protected_window: {}\n")
    with pytest.raises(BadInput) as refused:
        image_setting.plan(inventory, host_vars(inventory), "all", NEW)
    assert str(refused.value) == ("inventory: cannot set the image safely: ib_gateway_image is not set in the "
                                  "inventory (the role's default applies) (allowed: add 'ib_gateway_image: "
                                  f"{NEW}' to group_vars/ibgw_gateways.yml)")


def test_an_unknown_instance_is_refused_with_the_allowed_targets(tmp_path):
    inventory = write(tmp_path)
    with pytest.raises(BadInput) as refused:
        image_setting.plan(inventory, host_vars(inventory), "paper-b", NEW)
    assert str(refused.value) == "TARGET: 'paper-b' matches no instance on gw1 (allowed: all, live, paper)"


def test_instances_sharing_a_line_but_rolled_back_to_different_images_are_left_to_the_operator(tmp_path):
    inventory = write(tmp_path)
    with pytest.raises(OpsError) as refused:
        edit(inventory, "all", {"live": NEW, "paper": "gnzsnz/ib-gateway:10.45.1j"})
    assert refused.value.code == ExitCode.FAILED
    assert (inventory / "group_vars" / "ibgw_gateways.yml").read_text() == GROUP_VARS
