"""Every verb, given broken input, exits 2 with a message and never a Python traceback."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ibgw_ops import cli
from ibgw_ops.errors import ExitCode


def _verbs() -> list[str]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(action.choices)


# Broken inputs every verb meets before it acts: an unknown option, a target that is no name, a broken
# environment value (checked before any verb runs, so even 'lab up' and 'destroy' touch nothing).
BROKEN: list[tuple[list[str], dict[str, str]]] = [
    (["--bogus"], {}),
    (["Bad_Target!"], {}),
    ([], {"IBGW_OPS_ALERT_WEBHOOK": "file:///etc/passwd"}),
    ([], {"IBGW_OPS_INVENTORY": "/nonexistent/inventory", "IBGW_OPS_ALERT_WEBHOOK": "ftp://x"}),
    ([], {"IBGW_OPS_STATE_DIR": "", "ANSIBLE_VAULT_PASSWORD_FILE": " "}),
]


@pytest.mark.parametrize("verb", _verbs())
def test_broken_input_to_every_verb_exits_2_without_a_traceback(verb: str, tmp_path: Path):
    for extra, env in BROKEN:
        result = subprocess.run([sys.executable, "-m", "ibgw_ops", verb, *extra], capture_output=True, text=True,
                                env={**os.environ, "IBGW_OPS_STATE_DIR": str(tmp_path), **env},
                                stdin=subprocess.DEVNULL, check=False, timeout=60)
        said = result.stdout + result.stderr
        assert "Traceback" not in said, (extra, env, said)
        assert result.returncode == ExitCode.BAD_INPUT, (extra, env, said)
        assert "error" in result.stderr, (extra, env, said)
