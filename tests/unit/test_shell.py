"""``ibgw-ops ssh``: the exact ssh argv built from the inventory, and bad hosts refused before ssh runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from ibgw_ops import cli
from ibgw_ops.commands import shell
from ibgw_ops.errors import BadInput, ExitCode

IAP = {"ansible_host": "ibgw-1", "ansible_user": "ibgw", "ansible_ssh_private_key_file": "/home/op/.ssh/ibgw",
       "ansible_ssh_common_args": "-o 'ProxyCommand=gcloud compute start-iap-tunnel ibgw-1 22 --listen-on-stdin "
                                  "--zone europe-west1-b' -o StrictHostKeyChecking=yes"}
LAB = {"ansible_host": "172.17.0.2", "ansible_port": 22, "ansible_user": "root",
       "ansible_ssh_private_key_file": "/s/lab/id", "ansible_ssh_common_args":
           "-o IdentitiesOnly=yes -o UserKnownHostsFile=/s/lab/known_hosts -o StrictHostKeyChecking=yes"}


def test_the_iap_host_is_reached_through_its_proxy_command_with_the_command_after_dashdash():
    assert shell.ssh_argv(IAP, ["hostname", "-f"]) == [
        "ssh", "-o", "ProxyCommand=gcloud compute start-iap-tunnel ibgw-1 22 --listen-on-stdin --zone europe-west1-b",
        "-o", "StrictHostKeyChecking=yes", "-i", "/home/op/.ssh/ibgw", "--", "ibgw@ibgw-1", "hostname", "-f"]


def test_the_lab_host_uses_its_port_key_and_known_hosts_and_no_command_gives_a_login_shell():
    assert shell.ssh_argv(LAB, []) == [
        "ssh", "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=/s/lab/known_hosts", "-o",
        "StrictHostKeyChecking=yes", "-p", "22", "-i", "/s/lab/id", "--", "root@172.17.0.2"]


@pytest.mark.parametrize(("words", "expected"), [
    ([], (None, [])), (["--", "hostname"], (None, ["hostname"])), (["gw1"], ("gw1", [])),
    (["gw1", "--", "ls", "-l"], ("gw1", ["ls", "-l"])), (["gw1", "uptime"], ("gw1", ["uptime"])),
])
def test_host_and_command_are_split_at_dashdash(words, expected):
    assert shell.split_words(words) == expected


def test_a_host_must_be_named_among_several_and_must_exist():
    hosts = {"gw1": LAB, "gw2": IAP}
    assert shell.pick(hosts, "gw2") is IAP
    assert shell.pick({"gw1": LAB}, None) is LAB
    with pytest.raises(BadInput, match=r"HOST: several hosts: say which \(allowed: gw1, gw2\)"):
        shell.pick(hosts, None)
    with pytest.raises(BadInput, match=r"HOST: 'gw3' is not a host of ibgw_gateways \(allowed: gw1, gw2\)"):
        shell.pick(hosts, "gw3")
    with pytest.raises(BadInput, match="inventory: no host in group ibgw_gateways"):
        shell.pick({}, None)


def test_the_verb_runs_ssh_with_the_inventory_s_host(monkeypatch, tmp_path: Path, capsys):
    monkeypatch.setitem(LAB, "ansible_ssh_private_key_file", str(tmp_path / "id"))
    (tmp_path / "id").write_text("key\n")
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(
        {"all": {"children": {"ibgw_gateways": {"hosts": {"gw1": LAB}}}}}))
    ran: list[list[str]] = []
    real_run = subprocess.run

    def fake_run(argv, **kwargs):
        if argv[0] != "ssh":
            return real_run(argv, **kwargs)
        ran.append(argv)
        return subprocess.CompletedProcess(argv, 3)

    monkeypatch.setattr(subprocess, "run", fake_run)
    assert cli.main(["-i", str(tmp_path / "hosts.yml"), "ssh", "--", "hostname"]) == 3
    assert ran == [shell.ssh_argv(LAB, ["hostname"])]
    assert cli.main(["-i", str(tmp_path / "hosts.yml"), "ssh", "gw9"]) == ExitCode.BAD_INPUT
    assert "HOST: 'gw9' is not a host of ibgw_gateways (allowed: gw1)" in capsys.readouterr().err
    (tmp_path / "id").unlink()
    assert cli.main(["-i", str(tmp_path / "hosts.yml"), "ssh", "gw1"]) == ExitCode.BAD_INPUT
    assert f"inventory: ansible_ssh_private_key_file {tmp_path / 'id'} (in {tmp_path / 'hosts.yml'}): not a file" in (
        capsys.readouterr().err)
    assert len(ran) == 1
