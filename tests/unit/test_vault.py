"""A wrong or missing vault password, on real vault-encrypted files: exit 2 naming the files and how to give it.

Real ansible-vault encryption and real ansible-playbook runs of the controller-only ``vnc`` playbook (its host is
never contacted), so the words matched are the ones the installed Ansible says.
"""

from __future__ import annotations

import getpass
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ibgw_ops import cli, vault
from ibgw_ops.errors import ExitCode
from ibgw_ops.paths import ansible_command

CREDENTIALS = {"ib_gateway_credentials": {"live": {"user_id": "u1", "password": "p1"},
                                          "paper": {"user_id": "u2", "password": "p2"}}}
# Read and decrypted: the verb itself then refuses paper, which has no VNC password.
DECRYPTED = "ib_gateway_credentials.paper.vnc_password: not set"


@pytest.fixture
def inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IBGW_OPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv(vault.FILE_ENV, raising=False)
    directory = tmp_path / "inventory"
    (directory / "group_vars").mkdir(parents=True)
    (directory / "hosts.yml").write_text(yaml.safe_dump(
        {"all": {"children": {"ibgw_gateways": {"hosts": {"gw1": {"ansible_host": "192.0.2.1"}}}}}}))
    for name, text in (("right", "the-right-one"), ("wrong", "not-it")):
        (tmp_path / name).write_text(f"{text}\n")
    return directory


def encrypt(path: Path, document: object, password_file: Path) -> None:
    path.write_text(yaml.safe_dump(document))
    subprocess.run([ansible_command("ansible-vault"), "encrypt", "--vault-password-file", str(password_file),
                    str(path)], check=True, capture_output=True)
    path.chmod(0o600)


def vnc(inventory: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = cli.main(["-i", str(inventory), "vnc", "paper", *extra])
    return code, " ".join(capsys.readouterr().err.split())


def test_a_wrong_missing_or_right_password_for_the_credentials_file(inventory, tmp_path, monkeypatch, capsys):
    credentials = tmp_path / "credentials.yml"
    encrypt(credentials, CREDENTIALS, tmp_path / "right")
    (inventory / "group_vars" / "ibgw_gateways.yml").write_text(f"ib_gateway_credentials_file: {credentials}\n")
    monkeypatch.setenv(vault.FILE_ENV, str(tmp_path / "wrong"))
    assert vnc(inventory, capsys) == (ExitCode.BAD_INPUT, (
        f"ibgw-ops: error: vnc.yml failed on 1 host(s): gw1: Report a credentials file that cannot be read: BAD INPUT: "
        f"ib_gateway_credentials_file: the vault password given did not decrypt '{credentials}' (give the password "
        f"it was encrypted with: {vault.HOW})."))
    monkeypatch.delenv(vault.FILE_ENV)
    code, said = vnc(inventory, capsys)
    assert code == ExitCode.BAD_INPUT
    assert f"'{credentials}' is vault-encrypted and no vault password was given ({vault.HOW})." in said
    monkeypatch.setenv(vault.FILE_ENV, str(tmp_path / "right"))
    code, said = vnc(inventory, capsys)
    assert code == ExitCode.BAD_INPUT and DECRYPTED in said and "vault" not in said


def test_a_wrong_or_missing_password_for_encrypted_inventory_variables(inventory, tmp_path, monkeypatch, capsys):
    group_vars = inventory / "group_vars" / "ibgw_gateways.yml"
    encrypt(group_vars, CREDENTIALS, tmp_path / "right")
    monkeypatch.setenv(vault.FILE_ENV, str(tmp_path / "wrong"))
    assert vnc(inventory, capsys) == (ExitCode.BAD_INPUT, (
        f"ibgw-ops: error: {vault.FILE_ENV}: the vault password given did not decrypt {group_vars} (allowed: the "
        f"password they were encrypted with: {vault.HOW})"))
    monkeypatch.delenv(vault.FILE_ENV)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(getpass, "getpass", lambda prompt: "not-it")
    code, said = vnc(inventory, capsys, "--ask-vault-pass")
    assert code == ExitCode.BAD_INPUT
    assert f"--ask-vault-pass: the vault password given did not decrypt {group_vars}" in said
    monkeypatch.setattr(getpass, "getpass", lambda prompt: "the-right-one")
    code, said = vnc(inventory, capsys, "--ask-vault-pass")
    assert code == ExitCode.BAD_INPUT and DECRYPTED in said
    code, said = vnc(inventory, capsys)
    assert code == ExitCode.BAD_INPUT
    assert f"vault password: {group_vars}: vault-encrypted, and no vault password was given" in said


def test_files_with_an_encrypted_value_count_and_plain_ones_do_not(tmp_path):
    (tmp_path / "group_vars").mkdir()
    tagged = subprocess.run([ansible_command("ansible-vault"), "encrypt_string", "--vault-password-file",
                             str(Path(__file__)), "secret", "--name", "ib_gateway_credentials"],
                            check=True, capture_output=True, text=True).stdout
    (tmp_path / "group_vars" / "all.yml").write_text(tagged)
    (tmp_path / "group_vars" / "plain.yml").write_text("ib_gateway_time_zone: Europe/London\n")
    (tmp_path / "hosts.yml").write_text("all: {}\n")
    assert vault.encrypted_files(tmp_path) == [tmp_path / "group_vars" / "all.yml"]
    assert vault.encrypted_files(tmp_path / "hosts.yml") == [tmp_path / "group_vars" / "all.yml"]
    assert vault.refusal(["PLAY [x]", "ok"], tmp_path, prompted=False) is None


def test_verbs_reading_the_inventory_themselves_say_the_same(inventory, tmp_path, monkeypatch, capsys):
    group_vars = inventory / "group_vars" / "ibgw_gateways.yml"
    encrypt(group_vars, CREDENTIALS, tmp_path / "right")
    monkeypatch.setenv(vault.FILE_ENV, str(tmp_path / "wrong"))
    assert cli.main(["-i", str(inventory), "ssh", "--", "true"]) == ExitCode.BAD_INPUT
    assert (f"{vault.FILE_ENV}: the vault password given did not decrypt {group_vars}"
            in " ".join(capsys.readouterr().err.split()))
