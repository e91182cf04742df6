"""docker_engine's source choice per Debian release, with the release given as facts (no host is touched:
only the role's choose_source.yml runs, which asserts; the choice is a role variable)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from ibgw_ops.paths import ansible_command
from tests.support.layout import COLLECTIONS_PATH


def choose(tmp_path: Path, distribution: str, major: str, source: str) -> subprocess.CompletedProcess[str]:
    facts = {"distribution": distribution, "distribution_major_version": major,
             "distribution_version": f"{major}.1", "distribution_release": "any"}
    play = [{"name": "Choose", "hosts": "localhost", "gather_facts": False, "connection": "local",
             "vars": {"docker_engine_source": source}, "tasks": [
        {"name": "Pretend to be the release", "ansible.builtin.set_fact": {"ansible_facts": facts}},
        {"name": "Choose",
         "ansible.builtin.include_role": {"name": "ibgw_ops.gateway.docker_engine", "tasks_from": "choose_source",
                                           "public": True}},
        {"name": "Show", "ansible.builtin.debug": {"msg": "chosen={{ docker_engine_effective_source }}"}},
    ]}]
    playbook = tmp_path / "choose.yml"
    playbook.write_text(yaml.safe_dump(play))
    return subprocess.run([ansible_command("ansible-playbook"), "-i", "localhost,", str(playbook)],
                          env={"ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH), "PATH": "/usr/bin:/bin",
                               "ANSIBLE_LOCALHOST_WARNING": "False"},
                          capture_output=True, text=True, check=False, timeout=120)


@pytest.mark.parametrize(("major", "source", "chosen"), [
    ("12", "", "docker"), ("13", "", "debian"), ("13", "docker", "docker"), ("12", "docker", "docker"),
])
def test_supported_choices(tmp_path, major, source, chosen):
    result = choose(tmp_path, "Debian", major, source)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f'"msg": "chosen={chosen}"' in result.stdout


def test_debian_source_on_debian_12_is_refused_with_the_reason(tmp_path):
    result = choose(tmp_path, "Debian", "12", "debian")
    assert result.returncode != 0
    assert "docker_engine_source=debian on Debian 12.1" in result.stdout
    assert "old v1" in result.stdout and "Allowed: docker on 12" in result.stdout


@pytest.mark.parametrize(("distribution", "major"), [("Debian", "11"), ("Ubuntu", "24")])
def test_other_releases_are_refused(tmp_path, distribution, major):
    result = choose(tmp_path, distribution, major, "")
    assert result.returncode != 0
    assert json.dumps("supported are Debian 12 and 13")[1:-1] in result.stdout
