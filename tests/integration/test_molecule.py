"""The Molecule scenario (molecule/default): converge, idempotence and verify on a lab VM of its own."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]


def test_molecule_default_scenario_passes(tmp_path):
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}", "NO_COLOR": "1",
           "MOLECULE_NO_LOG": "false"}
    result = subprocess.run([str(Path(bin_dir) / "molecule"), "test", "--scenario-name", "default"], cwd=ROOT,
                            env=env, capture_output=True, text=True, check=False, timeout=1200)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    for step in ("converge", "idempotence", "verify"):
        assert re.search(rf"default\W+{step}\W+Executed: Successful", output), output[-4000:]
