"""A YAML file's text, and a refusal naming the file and the line, and quoting it, for an encoding or syntax error.

Ansible says only "YAML parsing failed: ...", and pyyaml names no line for an encoding error; an operator fixing a
file by hand needs the file, the line and the line itself. One line of message, so cron mail and logs keep it whole.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from ibgw_ops.errors import BadInput


def decode(path: Path | str, data: bytes, field: str, allowed: str) -> str:
    """``data`` as UTF-8 text (what Ansible reads); a byte that is not UTF-8 is refused with its line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        number = data.count(b"\n", 0, exc.start) + 1
        line = data.decode("utf-8", errors="replace").splitlines()[number - 1]
        raise BadInput(field, f"{path}: byte {exc.start} is not UTF-8 ({exc.reason}), on line {number}: "
                              f"{_quoted(line)}", allowed) from None


def invalid(path: Path | str, text: str, exc: yaml.YAMLError, field: str, allowed: str) -> BadInput:
    """The refusal of ``text`` (the content of ``path``), which pyyaml could not parse."""
    mark = getattr(exc, "problem_mark", None)
    if isinstance(exc, yaml.reader.ReaderError):
        number = text.count("\n", 0, exc.position) + 1
        where, problem = f"{path}, line {number}", f"character #x{exc.character:04x}: {exc.reason}"
    elif mark is not None:
        number = mark.line + 1
        where, problem = f"{path}, line {number}, column {mark.column + 1}", str(getattr(exc, "problem", None) or exc)
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark is not None:
            problem = f"{problem} ({context} on line {context_mark.line + 1})"
    else:
        return BadInput(field, f"{path}: not valid YAML: {exc}", allowed)
    lines = text.splitlines()
    shown = f"; line {number} reads {_quoted(lines[number - 1])}" if number <= len(lines) else " (at the end)"
    return BadInput(field, f"{where}: not valid YAML: {problem}{shown}", allowed)


def _quoted(line: str) -> str:
    """The line as a JSON string: its leading spaces and any control character stay visible."""
    return json.dumps(line.rstrip("\r\n"), ensure_ascii=False)
