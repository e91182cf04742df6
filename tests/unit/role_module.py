"""Runs one of the ib_gateway role's modules in its own process, as Ansible runs it on a host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from tests.support.layout import COLLECTIONS_PATH, MODULES

# Ansible ships the collection's module_utils with the module; here the checkout's collection is importable.
BOOT = ("import runpy, sys; sys.argv[0] = sys.argv.pop(1); sys.path.insert(0, sys.argv.pop(1)); "
        "runpy.run_path(sys.argv[0], run_name='__main__')")


def run_module(name: str, arguments: dict[str, Any], workdir: Path, *,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The module's process, given arguments in a file as Ansible's module wrapper gives them."""
    args_file = workdir / f"{name}-args-{uuid.uuid4().hex}.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": arguments}))
    argv = [sys.executable, "-c", BOOT, str(MODULES / f"{name}.py"), str(COLLECTIONS_PATH), str(args_file)]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60, env=env or dict(os.environ))


def result_of(process: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The module's JSON result."""
    return dict(json.loads(process.stdout))
