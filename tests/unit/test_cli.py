"""The command line: every verb documented, bad input refused with exit code 2."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ibgw_ops import cli, errors
from ibgw_ops.errors import ExitCode


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ibgw_ops", *args], capture_output=True, text=True,
                          env=env, check=False)


def test_help_lists_every_verb_with_a_one_line_description():
    out = run("--help")
    assert out.returncode == 0
    parser = cli.build_parser()
    verbs = next(a for a in parser._actions if a.dest == "verb")
    for choice in verbs._choices_actions:
        assert choice.help, f"verb {choice.dest} has no description"
        assert choice.dest in out.stdout
    lab_help = run("lab", "--help").stdout
    for action in ("up", "down", "status", "ssh"):
        assert f"    {action} " in lab_help


def test_unknown_verb_is_bad_input():
    out = run("frobnicate")
    assert out.returncode == ExitCode.BAD_INPUT
    assert "invalid choice" in out.stderr


def test_missing_inventory_names_the_flag_and_exits_2(tmp_path):
    out = run("--inventory", str(tmp_path / "nope"), "hosts")
    assert out.returncode == ExitCode.BAD_INPUT
    assert "--inventory" in out.stderr and "does not exist" in out.stderr


def test_heavy_libraries_are_not_imported_for_help():
    probe = ("import sys, contextlib, io\n"
             "from ibgw_ops import cli\n"
             "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
             "    cli.main(['--help'])\n"
             "print(sorted(m for m in ('docker', 'ansible_runner', 'google.cloud.compute_v1')"
             " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_exit_codes_are_distinct_and_each_is_documented_in_errors_py():
    source = inspect.getsource(errors)
    assert len({int(c) for c in ExitCode}) == len(ExitCode)
    for code in ExitCode:
        assert re.search(rf"^    {code.name} = {int(code)}  # \S", source, re.MULTILINE), code.name


def test_the_docs_point_to_the_one_exit_code_table():
    root = Path(__file__).parents[2]
    readme = (root / "README.md").read_text()
    assert "src/ibgw_ops/errors.py" in readme
    for page in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        text = page.read_text()
        for code in ExitCode:
            assert f"| {int(code)} | `{code.name}` |" not in text, (page.name, code.name)


def test_the_inventory_option_is_taken_after_the_verb_too(tmp_path, capsys):
    assert cli.main(["up", "paper", "-i", str(tmp_path / "missing")]) == ExitCode.BAD_INPUT
    assert f"--inventory: {tmp_path / 'missing'} does not exist" in capsys.readouterr().err
    args = cli.build_parser().parse_args(["-i", "before", "status"])
    assert args.inventory == "before"


def test_a_verb_option_before_the_verb_is_refused_saying_where_it_goes(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["--limit", "gw1", "up", "paper"])
    assert exited.value.code == ExitCode.BAD_INPUT
    assert "--limit is an option of up: it goes after the verb" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "said"), [
    (["up", "paper", "--timeout", "86401"], "argument --timeout: '86401' is not a whole number from 1 to 86400"),
    (["logs", "-n", "0"], "argument -n/--lines: '0' is not a whole number from 1 to 100000"),
    (["probe", "h:1", "--client-id", "-1"], "argument --client-id: '-1' is not a whole number from 0 to 2147483647"),
    (["probe", "h:1", "--wait", "inf"], "argument --wait: 'inf' is not a number of seconds from 0 to 3600"),
    (["paper-run", "--client-id", "2147483648", "--", "true"], "'2147483648' is not a whole number from 0 to"),
    (["status", "--limit", " "], "argument --limit: ' ' is empty"),
    (["probe", "a b:1"], "is not HOST:PORT with a host name or IP address and a port in 1-65535"),
    (["upgrade", "--image", " "], "argument --image: ' ' is not an image reference"),
])
def test_every_number_and_name_has_a_range_or_a_shape(argv, said, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == ExitCode.BAD_INPUT
    assert said in capsys.readouterr().err
