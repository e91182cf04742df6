"""ibgw_instance's action plugin in a real play on this machine: each instance's templates and fields rendered with
``ib_gateway_instance`` set to it (role variables derived from it too), then one module call for every instance."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from ibgw_ops.paths import ansible_command
from tests.support.layout import COLLECTIONS_PATH
from tests.unit.test_instance_module import docker

TEMPLATE = "# {{ ansible_managed }}\ninstance {{ ib_gateway_instance.name }}: {{ greeting }}\n"


def play(tmp_path: Path, files: list[dict[str, Any]], *, check: bool = False) -> tuple[int, str]:
    """Run the action for two instances; its exit code and output."""
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / "page.j2").write_text(TEMPLATE)
    task = {"name": "Write", "register": "written", "ibgw_ops.gateway.ibgw_instance": {
        "instances": [{"name": "live", "zone": "Europe/Zurich"}, {"name": "paper", "zone": "America/New_York"}],
        "fields": {"container": "'ibgw-' ~ ib_gateway_instance.name", "time_zone": "ib_gateway_instance.zone",
                   "vnc_enabled": "ib_gateway_instance.name == 'paper'"},
        "files": files, "root": str(tmp_path / "opt"), "uid": 1000, "pending_text": "pending\n"}}
    show = {"name": "Show", "ansible.builtin.debug": {"msg": "RESULT={{ written | to_json }}"}}
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "connection": "local",
                                         "vars": {"greeting": "hello {{ ib_gateway_instance.name | upper }}"},
                                         "tasks": [task, show]}]))
    result = subprocess.run([ansible_command("ansible-playbook"), "-i", "localhost,", str(playbook),
                             *(["--check"] if check else [])],
                            env={"ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH),
                                 "ANSIBLE_LOCALHOST_WARNING": "False",
                                 "PATH": f"{docker(tmp_path, running=False)}:/usr/bin:/bin"},
                            capture_output=True, text=True, check=False, timeout=120)
    return result.returncode, result.stdout + result.stderr


def result_of(output: str) -> dict[str, Any]:
    """The registered result the play showed."""
    shown = re.search(r'"msg": "RESULT=(.*)"\n', output)
    assert shown, output
    return dict(json.loads(json.loads(f'"{shown.group(1)}"')))


FILES = [{"dest": "page", "mode": "0644", "template": "page.j2"},
         {"dest": "same", "mode": "0644", "restart": False, "content": "one for all\n"}]


def test_each_instance_gets_its_own_rendering_in_one_call_and_a_second_run_changes_nothing(tmp_path):
    code, output = play(tmp_path, FILES)
    assert code == 0, output
    for name in ("live", "paper"):
        assert (tmp_path / "opt" / name / "page").read_text() == (
            f"# Ansible managed\ninstance {name}: hello {name.upper()}\n")
        assert (tmp_path / "opt" / name / "same").read_text() == "one for all\n"
    written = result_of(output)
    assert [row["name"] for row in written["instances"]] == ["live", "paper"] and written["changed"] is True
    code, output = play(tmp_path, FILES)
    assert code == 0, output
    assert result_of(output)["changed"] is False


def test_check_mode_renders_and_writes_nothing(tmp_path):
    code, output = play(tmp_path, FILES, check=True)
    assert code == 0, output
    assert result_of(output)["changed"] is True
    assert not (tmp_path / "opt").exists()


def test_a_file_with_both_a_template_and_a_content_is_refused_before_the_host(tmp_path):
    code, output = play(tmp_path, [{"dest": "page", "mode": "0644", "template": "page.j2", "content": "x"}])
    assert code != 0
    assert "files: a list of files, each with a template (rendered per instance) or a content" in output
    assert not (tmp_path / "opt").exists()
