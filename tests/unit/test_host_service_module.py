"""The ibgw_host_service module run as Ansible runs it, with systemctl and dpkg-query played by scripts: files and
the service's state in one call, idempotent, check mode and diff, a missing package leaving the service alone, and
the sync program's three answers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.unit.role_module import result_of, run_module

# systemctl as far as the module uses it: a file per enabled or active unit under $FAKE/state.
SYSTEMCTL = """#!/bin/sh
echo "systemctl $*" >> "$FAKE/calls"
case "$1" in
  is-enabled) [ -e "$FAKE/state/enabled-$3" ] ;;
  is-active) [ -e "$FAKE/state/active-$3" ] ;;
  enable) touch "$FAKE/state/enabled-$2" ;;
  start) touch "$FAKE/state/active-$2" ;;
  *) true ;;
esac
"""
# dpkg-query: the packages named in $FAKE/installed are installed, the others not (dpkg-query says so on stderr).
DPKG_QUERY = """#!/bin/sh
shift 2
for name in "$@"; do
  if grep -qx "$name" "$FAKE/installed"; then echo "installed $name"; else echo "no $name" >&2; fi
done
"""
# The sync program: the running state is $FAKE/running, the wanted one $FAKE/wanted.
SYNC = """#!/bin/sh
echo "sync $1" >> "$FAKE/calls"
if [ -e "$FAKE/bypass" ]; then echo "Docker does not manage iptables on this host" >&2; exit 4; fi
if cmp -s "$FAKE/running" "$FAKE/wanted"; then echo unchanged; exit 0; fi
if [ "$1" = check ]; then echo differs; exit 3; fi
cp "$FAKE/wanted" "$FAKE/running"; echo applied
"""


def fake(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    if not bin_dir.exists():
        bin_dir.mkdir()
        (tmp_path / "state").mkdir()
        for name, script in (("systemctl", SYSTEMCTL), ("dpkg-query", DPKG_QUERY)):
            (bin_dir / name).write_text(script)
            (bin_dir / name).chmod(0o755)
        (tmp_path / "installed").write_text("docker.io\ndocker-compose\n")
        (tmp_path / "wanted").write_text("rules\n")
    (tmp_path / "calls").write_text("")
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE": str(tmp_path)}


def apply(tmp_path: Path, **arguments: Any) -> dict[str, Any]:
    env = fake(tmp_path)
    etc = tmp_path / "etc"
    given = {"service": "demo.service", "directories": [str(etc)], "files": [
        {"dest": str(etc / "demo.conf"), "mode": "0644", "content": "PORTS=4001\n"},
        {"dest": str(etc / "demo.service"), "mode": "0644", "reload": True, "content": "[Service]\n"},
    ], **arguments}
    return result_of(run_module("ibgw_host_service", given, tmp_path, env=env))


def calls(tmp_path: Path) -> list[str]:
    return [line for line in (tmp_path / "calls").read_text().splitlines() if " is-" not in line]


def test_files_then_the_service_in_one_call_and_nothing_the_second_time(tmp_path):
    first = apply(tmp_path, packages=["docker.io"])
    assert first["changed"] and first["missing"] == [] and not first.get("failed"), first
    conf = tmp_path / "etc" / "demo.conf"
    assert conf.read_text() == "PORTS=4001\n" and oct(conf.stat().st_mode & 0o777) == "0o644"
    assert oct((tmp_path / "etc").stat().st_mode & 0o777) == "0o755"
    assert calls(tmp_path) == ["systemctl daemon-reload", "systemctl enable demo.service",
                               "systemctl start demo.service"]
    second = apply(tmp_path, packages=["docker.io"])
    assert second == {**second, "changed": False, "changes": []} and calls(tmp_path) == []


def test_a_changed_file_is_rewritten_with_its_mode_and_a_changed_unit_reloads_without_a_restart(tmp_path):
    apply(tmp_path)
    conf = tmp_path / "etc" / "demo.conf"
    conf.chmod(0o600)
    fixed = apply(tmp_path)
    assert fixed["changes"] == [str(conf)] and oct(conf.stat().st_mode & 0o777) == "0o644"
    assert calls(tmp_path) == []
    unit = {"dest": str(tmp_path / "etc" / "demo.service"), "mode": "0644", "reload": True,
            "content": "[Service]\nType=oneshot\n"}
    reloaded = apply(tmp_path, files=[unit])
    assert reloaded["changes"] == [unit["dest"], "systemctl daemon-reload"]
    assert calls(tmp_path) == ["systemctl daemon-reload"]


def test_a_missing_package_leaves_the_service_and_sync_to_the_install(tmp_path):
    result = apply(tmp_path, packages=["docker.io", "docker-ce"], sync=str(write_sync(tmp_path)))
    assert result["missing"] == ["docker-ce"]
    assert (tmp_path / "etc" / "demo.conf").is_file()
    assert calls(tmp_path) == []


def write_sync(tmp_path: Path) -> Path:
    program = tmp_path / "sync"
    program.write_text(SYNC)
    program.chmod(0o755)
    return program


def test_sync_applies_a_difference_once(tmp_path):
    program = str(write_sync(tmp_path))
    first = apply(tmp_path, sync=program)
    assert f"{program} apply: applied" in first["changes"]
    assert (tmp_path / "running").read_text() == "rules\n"
    second = apply(tmp_path, sync=program)
    assert second["changed"] is False and calls(tmp_path) == ["sync apply"]


def test_check_mode_compares_only_and_writes_nothing(tmp_path):
    program = str(write_sync(tmp_path))
    fresh = apply(tmp_path, _ansible_check_mode=True, _ansible_diff=True)
    assert fresh["changed"] and not (tmp_path / "etc").exists()
    assert fresh["changes"][-2:] == ["systemctl enable demo.service", "systemctl start demo.service"]
    assert calls(tmp_path) == []
    assert fresh["diff"][0] == {"before_header": str(tmp_path / "etc" / "demo.conf"),
                                "after_header": str(tmp_path / "etc" / "demo.conf"),
                                "before": "", "after": "PORTS=4001\n"}
    apply(tmp_path, sync=program)
    (tmp_path / "wanted").write_text("other rules\n")
    checked = apply(tmp_path, sync=program, _ansible_check_mode=True)
    assert checked["changes"] == [f"{program} check: differs"] and calls(tmp_path) == ["sync check"]
    assert (tmp_path / "running").read_text() == "rules\n"
    # A program this call would change is not run: the one on the host is not the one wanted.
    changed_program = {"dest": program, "mode": "0755", "content": SYNC + "# another version\n"}
    skipped = apply(tmp_path, sync=program, files=[changed_program], _ansible_check_mode=True)
    assert skipped["changes"] == [program] and calls(tmp_path) == []


def test_a_sync_failure_fails_with_what_the_program_said(tmp_path):
    program = str(write_sync(tmp_path))
    (tmp_path / "bypass").write_text("")
    result = apply(tmp_path, sync=program)
    assert result["failed"] and result["rc"] == 4
    assert result["msg"] == f"{program} apply exited 4: Docker does not manage iptables on this host"


def test_a_relative_destination_is_refused_before_any_change(tmp_path):
    result = apply(tmp_path, files=[{"dest": "demo.conf", "mode": "0644", "content": ""}])
    assert result["failed"] and "files[].dest must be an absolute path (got 'demo.conf')" in result["msg"]
    assert not (tmp_path / "etc").exists() and calls(tmp_path) == []


def test_a_path_the_module_cannot_write_fails_naming_the_service_and_the_path(tmp_path):
    (tmp_path / "etc").write_text("")
    result = apply(tmp_path)
    assert result["failed"] and result["changed"] is False
    assert result["msg"] == f"service demo.service: {tmp_path / 'etc'} is not a directory"
    assert calls(tmp_path) == []
