"""docs/cli.md's table of exit codes is ExitCode in errors.py, code for code, name for name, word for word."""

from __future__ import annotations

import re
from pathlib import Path

from ibgw_ops import errors
from ibgw_ops.errors import ExitCode

ROOT = Path(__file__).resolve().parents[2]
# "    NAME = 3  # meaning" in errors.py; "| 3 | NAME | meaning |" in docs/cli.md.
DEFINED = re.compile(r"^    ([A-Z_0-9]+) = (\d+)  # (.+)$", re.MULTILINE)
DOCUMENTED = re.compile(r"^\| (\d+) \| ([A-Z_0-9]+) \| (.+) \|$", re.MULTILINE)


def test_the_docs_table_is_exit_code_in_errors_py():
    defined = [(int(code), name, meaning) for name, code, meaning in DEFINED.findall(Path(errors.__file__).read_text())]
    documented = [(int(code), name, meaning) for code, name, meaning in
                  DOCUMENTED.findall((ROOT / "docs" / "cli.md").read_text())]
    assert [(code, name) for code, name, _ in defined] == [(member.value, member.name) for member in ExitCode]
    assert documented == defined
