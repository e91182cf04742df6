"""Which inventory a verb acts on, and the static inventory shape the lab and GCP share."""

from __future__ import annotations

import shutil

import pytest
import yaml

from ibgw_ops import inventory
from ibgw_ops.errors import BadInput, ExitCode
from ibgw_ops.paths import data_dir


@pytest.fixture(autouse=True)
def isolated_state(tmp_path, monkeypatch):
    monkeypatch.setenv("IBGW_OPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("IBGW_OPS_INVENTORY", raising=False)


def test_flag_wins_over_environment_and_lab(tmp_path, monkeypatch):
    flag, env = tmp_path / "flag.yml", tmp_path / "env.yml"
    flag.write_text("all: {}\n")
    env.write_text("all: {}\n")
    monkeypatch.setenv("IBGW_OPS_INVENTORY", str(env))
    assert inventory.resolve(str(flag)) == flag.resolve()
    assert inventory.resolve(None) == env.resolve()


def test_lab_inventory_is_the_default(tmp_path):
    lab = inventory.lab_inventory_dir()
    lab.mkdir(parents=True)
    assert inventory.resolve(None) == lab.resolve()


def test_no_inventory_at_all_says_how_to_get_one():
    with pytest.raises(BadInput) as error:
        inventory.resolve(None)
    assert error.value.code == ExitCode.BAD_INPUT
    assert "lab up" in str(error.value)


def test_missing_environment_inventory_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("IBGW_OPS_INVENTORY", str(tmp_path / "gone"))
    with pytest.raises(BadInput, match="IBGW_OPS_INVENTORY"):
        inventory.resolve(None)


def test_write_static_shape_and_change_detection(tmp_path):
    hosts = {"vm1": {"ansible_host": "10.0.0.5", "ansible_user": "root"}}
    assert inventory.write_static(tmp_path, hosts, "generated") is True
    assert inventory.write_static(tmp_path, hosts, "generated") is False
    document = yaml.safe_load((tmp_path / "hosts.yml").read_text())
    assert document == {"all": {"children": {"ibgw_gateways": {"hosts": hosts}}}}
    assert inventory.write_static(tmp_path, {"vm1": {"ansible_host": "10.0.0.6"}}, "generated") is True


def test_group_vars_are_seeded_once_and_operator_edits_kept(tmp_path):
    example = tmp_path / "example"
    (example / "group_vars").mkdir(parents=True)
    (example / "group_vars" / "ibgw_gateways.yml").write_text("a: 1\n")
    target = tmp_path / "inv"
    inventory.seed_group_vars(target, example)
    seeded = target / "group_vars" / "ibgw_gateways.yml"
    assert seeded.read_text() == "a: 1\n"
    seeded.write_text("a: 2\n")
    inventory.seed_group_vars(target, example)
    assert seeded.read_text() == "a: 2\n"


def test_a_gcp_inventory_folder_s_gcp_yml_is_not_read_as_hosts_or_groups(tmp_path):
    shutil.copytree(data_dir() / "inventory" / "gcp", tmp_path / "prod")
    inventory.write_static(tmp_path / "prod", {"ibgw-vm": {"ansible_host": "ibgw-vm"}}, "test")
    graph = inventory.ansible_inventory(tmp_path / "prod", "--graph")
    assert graph.split() == ["@all:", "|--@ungrouped:", "|--@ibgw_gateways:", "|", "|--ibgw-vm"]
