"""A YAML syntax or encoding error in any inventory file exits 2 for every verb, naming the file and the line and
quoting it, before any playbook runs (issue 32, item 2)."""

from __future__ import annotations

import ansible_runner
import pytest
from ansible.parsing.vault import VaultLib, VaultSecret

from ibgw_ops import cli, inventory_files, vault
from ibgw_ops.errors import BadInput, ExitCode
from tests.unit.fake_runner import FakeRunner

HOSTS = "all:\n  children:\n    ibgw_gateways:\n      hosts:\n        gw1: {ansible_host: 10.0.0.5}\n"
BROKEN = "ib_gateway_instances:\n  - name: live\n    mode: live\n  - name: paper\n   mode: paper\n"
VAULT_VALUE = "ib_gateway_credentials:\n  paper:\n    password: !vault |\n      $ANSIBLE_VAULT;1.1;AES256\n      6162\n"


@pytest.fixture
def inventory(tmp_path, monkeypatch):
    folder = tmp_path / "inv"
    (folder / "group_vars").mkdir(parents=True)
    (folder / "hosts.yml").write_text(HOSTS)
    monkeypatch.setenv("IBGW_OPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("IBGW_OPS_INVENTORY", str(folder))
    monkeypatch.delenv(vault.FILE_ENV, raising=False)
    return folder


@pytest.fixture
def fake(monkeypatch) -> FakeRunner:
    recorder = FakeRunner()
    monkeypatch.setattr(ansible_runner, "run", recorder)
    return recorder


@pytest.mark.parametrize("argv", [["deploy"], ["status"], ["paper-up"], ["paper-down"], ["paper-run", "--", "true"],
                                  ["live-signin"], ["up", "live"], ["logs"], ["hosts"], ["ssh", "--", "true"],
                                  ["vnc", "paper"], ["upgrade", "--image", "x:1"], ["rollback"]])
def test_a_broken_group_vars_file_stops_every_verb_with_its_line(inventory, fake, capsys, argv):
    broken = inventory / "group_vars" / "ibgw_gateways.yml"
    broken.write_text(BROKEN)
    assert cli.main(argv) == ExitCode.BAD_INPUT
    assert fake.calls == []
    err = capsys.readouterr().err
    assert f"inventory: {broken}, line 5, column 4: not valid YAML" in err
    assert 'line 5 reads "   mode: paper"' in err
    assert "Warning" not in err and "Traceback" not in err


@pytest.mark.parametrize(("name", "data", "words"), [
    ("hosts.yml", HOSTS.encode() + b"        gw2: {ansible_host: 10.0.0.6\n", ["line 7", "column 1"]),
    ("host_vars/gw1.yml", b"ib_gateway_image: caf\xe9\n",
     ["byte 21 is not UTF-8", 'on line 1: "ib_gateway_image: caf']),
    ("group_vars/ibgw_gateways/vault", b"secret: x\x07\n", ["line 1: not valid YAML: character #x0007"]),
    ("group_vars/all.yaml", b"a: [1\n", ["line 2, column 1", "(at the end)"]),
])
def test_each_inventory_file_is_checked(inventory, name, data, words):
    path = inventory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    with pytest.raises(BadInput) as error:
        inventory_files.check(inventory)
    assert error.value.code == ExitCode.BAD_INPUT
    assert str(path) in str(error.value)
    for word in words:
        assert word in str(error.value)


def test_an_inventory_file_is_checked_with_the_vars_folders_beside_it(inventory):
    (inventory / "group_vars" / "ibgw_gateways.yml").write_text(BROKEN)
    with pytest.raises(BadInput, match=r"ibgw_gateways\.yml, line 5"):
        inventory_files.check(inventory / "hosts.yml")


def test_vault_values_whole_vault_files_and_what_ansible_does_not_read_pass(inventory):
    (inventory / "group_vars" / "ibgw_gateways.yml").write_text(VAULT_VALUE + "tabbed:\tvalue\n")
    (inventory / "group_vars" / "all.yml").write_text("$ANSIBLE_VAULT;1.1;AES256\n3132\n")
    for ignored in ("gcp.yml", "README.md", "group_vars/.swap.yml", "group_vars/all.yml~", "hosts.ini"):
        (inventory / ignored).write_text("a: [broken\n")
    assert inventory_files.check(inventory) == inventory


def test_a_vault_encrypted_file_that_is_no_yaml_is_named_with_its_line_after_ansible_fails(inventory):
    secret = VaultSecret(b"pw-123")
    encrypted = inventory / "group_vars" / "all.yml"
    encrypted.write_bytes(VaultLib([("default", secret)]).encrypt(BROKEN))
    said = ["PLAY [Gateway lifecycle, start] ***", "[ERROR]: YAML parsing failed: Mapping values are not allowed."]
    refusal = vault.unparsed(said, inventory, "pw-123")
    assert refusal is not None and refusal.code == ExitCode.BAD_INPUT
    assert f"{encrypted} (vault-encrypted), line 5, column 4: not valid YAML" in str(refusal)
    assert vault.unparsed(said[:1], inventory, "pw-123") is None
    undecryptable = vault.unparsed(said, inventory, "wrong")
    assert undecryptable is not None
    assert f"{encrypted}: vault-encrypted, and Ansible could not parse" in str(undecryptable)


def test_ansible_runs_without_python_warnings(inventory, fake):
    assert cli.main(["status"]) == ExitCode.OK
    assert fake.calls[0]["envvars"]["PYTHONWARNINGS"] == "ignore"


INSTANCES = ("ib_gateway_instances:\n  - name: live\n    mode: live\n  - name: live-b\n    mode: live\n"
             "  - name: pipeline\n    mode: paper\n")


@pytest.mark.parametrize(("target", "named"), [("paper", "'paper' selects paper instance(s) pipeline"),
                                                ("pipeline", "'pipeline' selects paper instance(s) pipeline"),
                                                ("all", "'all' selects paper instance(s) pipeline")])
def test_live_signin_refuses_a_target_with_paper_before_anything_runs(inventory, fake, capsys, target, named):
    (inventory / "group_vars" / "ibgw_gateways.yml").write_text(INSTANCES)
    assert cli.main(["live-signin", target]) == ExitCode.BAD_INPUT
    assert fake.calls == []
    err = capsys.readouterr().err
    assert f"TARGET: {named}" in err
    assert "paper-up or paper-run" in err and "(allowed: live, live-b)" in err


def test_live_signin_refuses_paper_by_the_role_s_default_instances(inventory, fake, capsys):
    assert cli.main(["live-signin", "paper"]) == ExitCode.BAD_INPUT
    assert fake.calls == []
    assert "'paper' selects paper instance(s) paper" in capsys.readouterr().err


def test_live_signin_of_a_live_instance_runs(inventory, fake):
    (inventory / "group_vars" / "ibgw_gateways.yml").write_text(INSTANCES)
    assert cli.main(["live-signin", "live-b"]) == ExitCode.OK
    assert [name for name, _ in fake.playbooks()] == ["stop.yml", "start.yml"]


def test_instance_modes_come_from_any_plain_file(inventory):
    (inventory / "host_vars").mkdir()
    (inventory / "host_vars" / "gw1.yml").write_text(INSTANCES)
    (inventory / "group_vars" / "all.yml").write_text("$ANSIBLE_VAULT;1.1;AES256\n3132\n")
    assert inventory_files.instance_modes(inventory) == {"live": "live", "live-b": "live", "pipeline": "paper"}


def test_every_missing_ssh_key_file_is_named_at_once_a_templated_or_relative_one_is_left(tmp_path):
    (tmp_path / "key").write_text("k\n")
    (tmp_path / "hosts.yml").write_text(
        "ibgw_gateways:\n  hosts:\n"
        f"    a: {{ansible_ssh_private_key_file: {tmp_path / 'key'}}}\n"
        f"    b: {{ansible_ssh_private_key_file: {tmp_path / 'gone'}}}\n"
        f"    c: {{ansible_private_key_file: {tmp_path}}}\n"
        "    d: {ansible_ssh_private_key_file: '{{ key }}'}\n"
        "    e: {ansible_ssh_private_key_file: keys/relative}\n")
    with pytest.raises(BadInput) as refused:
        inventory_files.check_key_files(tmp_path / "hosts.yml")
    assert str(refused.value) == (
        f"inventory: ansible_ssh_private_key_file {tmp_path / 'gone'} (in {tmp_path / 'hosts.yml'}); "
        f"ansible_private_key_file {tmp_path} (in {tmp_path / 'hosts.yml'}): not a file (allowed: the path of an "
        "existing SSH private key file on the controller)")
