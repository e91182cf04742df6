"""Every failure a role reports with an exit code of its own names its class, and the CLI's table knows it."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ibgw_ops import errors
from ibgw_ops.errors import FAILURE_CLASSES
from tests.support.layout import MODULES, ROLES

# "<CLASS>: " at the start of a message: capitals, digits and spaces.
CLASS = re.compile(r"^([A-Z0-9][A-Z0-9 ]*[A-Z]): ")


def tasks(node: Any) -> Iterator[dict[str, Any]]:
    """Every task in a task file, blocks and rescues included."""
    for task in node or []:
        yield task
        for key in ("block", "rescue", "always"):
            yield from tasks(task.get(key))


def role_tasks() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(ROLES.glob("*/tasks/*.yml")) + sorted(ROLES.glob("*/handlers/*.yml")):
        for task in tasks(yaml.safe_load(path.read_text())):
            yield f"{path.relative_to(ROLES)}: {task.get('name')}", task


def messages(action: str) -> list[tuple[str, str]]:
    return [(where, str(task[action].get("fail_msg" if action.endswith("assert") else "msg", "")).strip())
            for where, task in role_tasks() if action in task]


@pytest.mark.parametrize(("where", "message"), messages("ansible.builtin.assert"))
def test_every_check_names_a_known_class(where, message):
    assert (match := CLASS.match(message)), where
    assert match.group(1) in FAILURE_CLASSES, where


@pytest.mark.parametrize(("where", "message"), [m for m in messages("ansible.builtin.fail") if CLASS.match(m[1])])
def test_every_classed_fail_task_names_a_known_class(where, message):
    match = CLASS.match(message)
    assert match and match.group(1) in FAILURE_CLASSES, where


def test_the_start_failures_the_role_maps_are_known_classes():
    failures = yaml.safe_load((ROLES / "ib_gateway" / "vars" / "main.yml").read_text())["ib_gateway_failures"]
    assert {entry["prefix"] for entry in failures.values()} <= set(FAILURE_CLASSES)


def test_the_modules_messages_use_known_classes():
    used = {match for path in MODULES.glob("*.py")
            for match in re.findall(r'msg=f?"([A-Z0-9][A-Z0-9 ]*[A-Z]): ', path.read_text())}
    assert used, "the modules report classed failures (BAD INPUT, PROTECTED WINDOW)"
    assert used <= set(FAILURE_CLASSES)


def test_every_class_has_its_own_documented_exit_code():
    source = inspect.getsource(errors)
    for failure_class, code in FAILURE_CLASSES.items():
        assert re.search(rf"^    {code.name} = {int(code)}  # \S", source, re.MULTILINE), (failure_class, code)
    runbook = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    assert "src/ibgw_ops/errors.py" in runbook
