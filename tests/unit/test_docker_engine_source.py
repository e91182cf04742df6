"""docker_engine's packages per Debian release and source: the role's choice (its variables, rendered by Ansible on
the controller) as ibgw_host_service applies it to a host's os-release, with dpkg played by a script. No host is
touched, and no facts are gathered: the module reads the release in the role's first round trip."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ibgw_ops.paths import ansible_command
from tests.support.layout import COLLECTIONS_PATH, role_defaults
from tests.unit.role_module import result_of, run_module
from tests.unit.test_host_service_module import fake

OS_RELEASE = {"Debian": 'NAME="Debian GNU/Linux"\nID=debian\nVERSION_ID="{major}"\nVERSION_CODENAME=any\n',
              "Ubuntu": 'NAME="Ubuntu"\nID=ubuntu\nVERSION_ID="{major}.04"\nVERSION_CODENAME=any\n'}


def role_choice(tmp_path: Path, source: str) -> dict[str, Any]:
    """The role's packages by release and its refusal for ``source``, as Ansible renders them."""
    show = {"releases": "{{ docker_engine_packages_by_release }}", "unsupported": "{{ docker_engine_unsupported }}"}
    play = [{"name": "Choose", "hosts": "localhost", "gather_facts": False, "connection": "local",
             "vars": {"docker_engine_source": source}, "roles": [], "tasks": [
                 {"name": "Load the role's variables, run none of its tasks", "ansible.builtin.import_role": {
                     "name": "ibgw_ops.gateway.docker_engine", "tasks_from": "install"}, "when": False},
                 {"name": "Show", "ansible.builtin.debug": {"msg": "CHOICE={{ show | to_json }}"},
                  "vars": {"show": show}}]}]
    playbook = tmp_path / f"choose-{source or 'auto'}.yml"
    playbook.write_text(yaml.safe_dump(play))
    result = subprocess.run([ansible_command("ansible-playbook"), "-i", "localhost,", str(playbook)],
                            env={"ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH), "PATH": "/usr/bin:/bin",
                                 "ANSIBLE_LOCALHOST_WARNING": "False"},
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    shown = re.search(r'"msg": "CHOICE=(.*)"\n', result.stdout)
    assert shown, result.stdout
    return dict(json.loads(json.loads(f'"{shown.group(1)}"')))


def apply(tmp_path: Path, distribution: str, major: str, source: str) -> dict[str, Any]:
    """ibgw_host_service with the role's choice on a host of this release; nothing is installed there."""
    env = fake(tmp_path)
    (tmp_path / "installed").write_text("")
    etc = tmp_path / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "os-release").write_text(OS_RELEASE[distribution].format(major=major))
    (etc / "debian_version").write_text(f"{major}.1\n")
    choice = role_choice(tmp_path, source)
    return result_of(run_module("ibgw_host_service", {
        "service": "docker", "releases": choice["releases"], "unsupported": choice["unsupported"],
        "os_release": str(etc / "os-release"), "files": [{"dest": str(etc / "daemon.json"), "mode": "0644",
                                                          "content": "{}\n"}]}, tmp_path, env=env))


@pytest.mark.parametrize(("major", "source", "chosen"), [
    ("12", "", "docker"), ("13", "", "debian"), ("13", "docker", "docker"), ("12", "docker", "docker"),
])
def test_supported_choices(tmp_path, major, source, chosen):
    result = apply(tmp_path, "Debian", major, source)
    assert not result.get("failed"), result
    assert result["missing"] == role_defaults("docker_engine")[f"docker_engine_{chosen}_packages"]
    assert (result["release"]["id"], result["release"]["version"]) == ("debian", f"{major}.1")


def test_debian_source_on_debian_12_is_refused_with_the_reason_before_any_change(tmp_path):
    result = apply(tmp_path, "Debian", "12", "debian")
    assert result["failed"]
    assert "BAD INPUT: docker_engine_source=debian on Debian 12.1" in result["msg"]
    assert "old v1" in result["msg"] and "Allowed: docker on 12" in result["msg"]
    assert not (tmp_path / "etc" / "daemon.json").exists()


@pytest.mark.parametrize(("distribution", "major"), [("Debian", "11"), ("Ubuntu", "24")])
def test_other_releases_are_refused(tmp_path, distribution, major):
    result = apply(tmp_path, distribution, major, "")
    assert result["failed"] and "supported are Debian 12 and 13" in result["msg"]
    assert not (tmp_path / "etc" / "daemon.json").exists()
