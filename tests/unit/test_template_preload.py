"""The template_preload callback, in real ansible-playbook runs with the shipped ansible.cfg: the task workers fork
with Jinja's plugins and the collection's filters already loaded, and without the callback they do not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from ibgw_ops.paths import ansible_env
from tests.support.layout import FILTERS, MODULE_UTILS_PACKAGE

COLLECTION_PACKAGE = MODULE_UTILS_PACKAGE.removesuffix(".plugins.module_utils")

# ansible-playbook, with each task's worker noting what it inherited from the main process before it runs the task.
WORKER_PROBE = """
import json, os, sys
from ansible._internal._templating._jinja_bits import AnsibleEnvironment
from ansible.cli.playbook import main
from ansible.executor.process import worker

run = worker.WorkerProcess._run

def noting_run(self):
    with open(os.environ["PROBE_NOTES"], "a") as notes:
        lexers = len(AnsibleEnvironment._lexer_cache)
        notes.write(json.dumps({"modules": sorted(sys.modules), "lexers": lexers}) + "\\n")
    return run(self)

worker.WorkerProcess._run = noting_run
sys.argv[0] = "ansible-playbook"
main()
"""


def inherited(tmp_path: Path, env: dict[str, str]) -> list[dict[str, object]]:
    """What each task's worker found loaded when it started, for a two-task play on localhost."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "connection": "local",
                                         "tasks": [{"ansible.builtin.debug": {"msg": "{{ [1] | length }}"}},
                                                   {"ansible.builtin.debug": {"msg": "second"}}]}]))
    notes = tmp_path / "notes.jsonl"
    notes.unlink(missing_ok=True)
    result = subprocess.run([sys.executable, "-c", WORKER_PROBE, "-i", "localhost,", str(playbook)],
                            env={**ansible_env(), "ANSIBLE_LOCALHOST_WARNING": "False", "PROBE_NOTES": str(notes),
                                 **env},
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "callback" not in result.stderr.lower(), result.stderr
    return [json.loads(line) for line in notes.read_text().splitlines()]


def preloaded(note: dict[str, object]) -> list[str]:
    """The modules the callback loads, of those the worker found loaded (Ansible loads its own plugins' files under
    names with a suffix: ansible.plugins.filter.core_<digits>)."""
    wanted = ["ansible.plugins.filter.core_", "ansible.plugins.test.core_",
              *(f"{COLLECTION_PACKAGE}.plugins.filter.{path.stem}" for path in sorted(FILTERS.glob("*.py")))]
    modules = note["modules"]
    assert isinstance(modules, list)
    return [name for name in wanted if any(module.startswith(name) for module in modules)]


def test_every_worker_forks_with_the_template_engine_loaded(tmp_path):
    notes = inherited(tmp_path, {})
    assert len(notes) == 2
    wanted = len(list(FILTERS.glob("*.py"))) + 2
    for note in notes:
        assert len(preloaded(note)) == wanted, note
        assert note["lexers"] == 1


def test_without_the_callback_every_worker_forks_without_them(tmp_path):
    shipped = Path(ansible_env()["ANSIBLE_CONFIG"]).read_text()
    assert "\ncallbacks_enabled = ibgw_ops.gateway.template_preload\n" in shipped
    config = tmp_path / "ansible.cfg"
    config.write_text(shipped.replace("\ncallbacks_enabled = ibgw_ops.gateway.template_preload\n", "\n"))
    notes = inherited(tmp_path, {"ANSIBLE_CONFIG": str(config)})
    assert len(notes) == 2
    for note in notes:
        assert preloaded(note) == []
        assert note["lexers"] == 0
