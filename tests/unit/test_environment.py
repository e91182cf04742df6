"""One rule for the environment: a variable ibgw-ops reads that is set but empty is refused, all of them at once."""

from __future__ import annotations

import re

import pytest

from ibgw_ops import alerts, environment, inventory, paths, vault
from ibgw_ops.cli import main
from ibgw_ops.errors import BadInput, ExitCode
from ibgw_ops.gcp import compute, settings


def test_every_variable_the_code_reads_is_under_the_rule() -> None:
    read = {inventory.INVENTORY_ENV, paths.STATE_DIR_ENV, vault.FILE_ENV, alerts.WEBHOOK_ENV, alerts.TIMEOUT_ENV,
            settings.ENDPOINT_ENV, compute.CREDENTIALS_ENV}
    assert read == set(environment.ALLOWED)


@pytest.mark.parametrize("blank", ["", "  "])
def test_set_but_empty_is_refused_unset_is_none(monkeypatch: pytest.MonkeyPatch, blank: str) -> None:
    monkeypatch.setenv("IBGW_OPS_INVENTORY", blank)
    with pytest.raises(BadInput, match=re.escape("IBGW_OPS_INVENTORY: set but empty (allowed: an inventory file or "
                                                 "folder, or unset it)")):
        environment.value("IBGW_OPS_INVENTORY")
    monkeypatch.delenv("IBGW_OPS_INVENTORY")
    assert environment.value("IBGW_OPS_INVENTORY") is None


def test_the_cli_names_every_empty_variable_at_once(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("IBGW_OPS_ALERT_WEBHOOK", "")
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", " ")
    assert main(["hosts"]) == ExitCode.BAD_INPUT
    assert ("ANSIBLE_VAULT_PASSWORD_FILE, IBGW_OPS_ALERT_WEBHOOK: set but empty (allowed: ANSIBLE_VAULT_PASSWORD_FILE: "
            "a file holding the vault password") in capsys.readouterr().err


def test_a_state_dir_that_is_a_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("IBGW_OPS_STATE_DIR", str(tmp_path / "file"))
    with pytest.raises(BadInput, match="is not a folder"):
        paths.state_dir()


def test_one_empty_variable_is_named_as_when_it_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IBGW_OPS_STATE_DIR", "")
    with pytest.raises(BadInput, match=re.escape("IBGW_OPS_STATE_DIR: set but empty (allowed: a folder for "
                                                 "ibgw-ops' state, or unset it)")):
        environment.check()
