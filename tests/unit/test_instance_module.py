"""The ibgw_instance module run as Ansible runs it: what it writes, what it calls a change, and the marker."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.unit.role_module import result_of, run_module

UID = 1000
PENDING = "The configuration changed while the gateway was running.\n"


def docker(directory: Path, *, running: bool, images: tuple[str, ...] = ()) -> Path:
    """A docker that knows one container, ibgw-paper, running or exited, and ``images``."""
    bin_dir = directory / "bin"
    bin_dir.mkdir(exist_ok=True)
    state = {"Running": running, "Status": "running" if running else "exited", "StartedAt": "2026-12-01T09:00:00Z"}
    container = {"State": state, "RestartCount": 0, "Id": "c" * 64, "Config": {"Image": "img:1"}, "Image": "sha256:1"}
    script = bin_dir / "docker"
    script.write_text(
        "#!/bin/sh\n"
        '[ "$1 $2" = "image inspect" ] && { case " $* " in\n'
        + "".join(f'  *" {image} "*) echo "[]"; exit 0;;\n' for image in images)
        + '  *) echo "[]"; exit 1;; esac; }\n'
        f"[ \"$1\" = inspect ] && {{ echo '{json.dumps(container)}'; exit 0; }}\n"
        "exit 1\n")
    script.chmod(0o755)
    return bin_dir


INSTANCE_FIELDS = ("name", "container", "files", "time_zone", "vnc_enabled")


def apply(tmp_path: Path, *, running: bool = False, check: bool = False, diff: bool = False,
          **overrides: Any) -> dict[str, Any]:
    """One instance, paper: the call's result with the instance's own result merged in."""
    instance = {"name": "paper", "container": "ibgw-paper",
                "files": [{"dest": "compose.yaml", "content": "services: {}\n", "mode": "0640"},
                          {"dest": "stop", "content": "#!/bin/sh\n", "mode": "0750", "restart": False}],
                "time_zone": "America/New_York", "vnc_enabled": False}
    instance.update((key, value) for key, value in overrides.items() if key in INSTANCE_FIELDS)
    arguments = {"root": str(tmp_path / "opt"), "uid": UID, "instances": [instance], "pending_text": PENDING,
                 "_ansible_check_mode": check, "_ansible_diff": diff,
                 **{key: value for key, value in overrides.items() if key not in INSTANCE_FIELDS}}
    result = call(tmp_path, arguments, running=running)
    return {**result, **(result.get("instances") or [{}])[0]}


def call(tmp_path: Path, arguments: dict[str, Any], *, running: bool = False,
         images: tuple[str, ...] = ("img:1",)) -> dict[str, Any]:
    """The module's result on a host whose docker knows ``images`` and the container ibgw-paper."""
    env = {**os.environ, "PATH": f"{docker(tmp_path, running=running, images=images)}:{os.environ['PATH']}"}
    return result_of(run_module("ibgw_instance", arguments, tmp_path, env=env))


def meta(path: Path) -> tuple[int, int, str]:
    info = path.stat()
    return info.st_uid, info.st_gid, oct(stat.S_IMODE(info.st_mode))


def test_a_new_instance_gets_its_directories_and_files_then_nothing_changes(tmp_path):
    first = apply(tmp_path)
    instance = tmp_path / "opt" / "paper"
    assert first["changed"] is True
    assert meta(tmp_path / "opt") == (0, 0, "0o755")
    assert meta(instance) == (0, 0, "0o750")
    assert meta(instance / "secrets") == (UID, UID, "0o700")
    assert meta(instance / "settings") == (UID, UID, "0o700")
    assert (instance / "compose.yaml").read_text() == "services: {}\n"
    assert meta(instance / "compose.yaml") == (0, 0, "0o640")
    assert meta(instance / "stop") == (0, 0, "0o750")
    assert (first["container"], first["running"], first["restart_pending"]) == ("exited", False, False)
    again = apply(tmp_path)
    assert (again["changed"], again["changes"]) == (False, [])


def test_the_programs_become_a_package_in_lib_and_a_change_needs_no_restart(tmp_path):
    programs = {"tws_probe.py": "PROBE = 1\n", "gateway_log.py": "LOG = 1\n"}
    apply(tmp_path, programs=programs)
    package = tmp_path / "opt" / "paper" / "lib" / "ibgw_on_host"
    assert sorted(path.name for path in package.iterdir()) == ["__init__.py", "gateway_log.py", "tws_probe.py"]
    assert (meta(package.parent), meta(package), meta(package / "tws_probe.py")) == (
        (0, 0, "0o755"), (0, 0, "0o755"), (0, 0, "0o644"))
    assert (package / "tws_probe.py").read_text() == "PROBE = 1\n"
    changed = apply(tmp_path, running=True, programs={**programs, "tws_probe.py": "PROBE = 2\n"})
    assert (changed["changes"], changed["restart_pending"]) == ([str(package / "tws_probe.py")], False)
    refused = apply(tmp_path, programs={"../stop": "x"})
    assert refused["failed"] and "programs: '../stop' must be a module's file name (*.py)" in refused["msg"]


def test_check_mode_reports_the_changes_and_writes_nothing(tmp_path):
    result = apply(tmp_path, check=True, diff=True)
    assert result["changed"] is True
    assert str(tmp_path / "opt" / "paper" / "compose.yaml") in result["changes"]
    assert not (tmp_path / "opt").exists()
    assert {"before": "", "after": "services: {}\n"}.items() <= result["diff"][0].items()


def test_a_changed_file_of_a_running_gateway_marks_a_pending_restart(tmp_path):
    apply(tmp_path)
    marker = tmp_path / "opt" / "paper" / "restart-pending"
    assert apply(tmp_path, running=True)["restart_pending"] is False
    changed = apply(tmp_path, running=True, diff=True,
                    files=[{"dest": "compose.yaml", "content": "services: {a: {}}\n", "mode": "0640"}])
    assert changed["restart_pending"] is True
    assert marker.read_text() == PENDING
    assert meta(marker) == (0, 0, "0o644")
    assert changed["diff"][0]["before"] == "services: {}\n"
    # A stopped gateway applies everything at its next start: the marker goes.
    assert apply(tmp_path, running=False)["restart_pending"] is False
    assert not marker.exists()


def test_the_stop_script_changes_without_a_pending_restart(tmp_path):
    apply(tmp_path)
    result = apply(tmp_path, running=True,
                   files=[{"dest": "stop", "content": "#!/bin/sh\nexit 0\n", "mode": "0750", "restart": False}])
    assert result["changed"] is True
    assert result["restart_pending"] is False


@pytest.mark.parametrize(("before", "after"), [
    ("[Logon]\nLocale=en\nTimeZone=Europe/Zurich\n", "[Logon]\nLocale=en\nTimeZone=America/New_York\n"),
    ("[IBGateway]\nApiOnly=true\n[Logon]\nLocale=en\n",
     "[IBGateway]\nApiOnly=true\n[Logon]\nTimeZone=America/New_York\nLocale=en\n"),
    ("[IBGateway]\nApiOnly=true", "[IBGateway]\nApiOnly=true\nTimeZone=America/New_York\n"),
])
def test_jts_ini_gets_the_time_zone_and_a_pending_restart(tmp_path, before, after):
    apply(tmp_path)
    jts = tmp_path / "opt" / "paper" / "settings" / "jts.ini"
    jts.write_text(before)
    os.chown(jts, 0, 0)
    jts.chmod(0o600)
    result = apply(tmp_path, running=True)
    assert jts.read_text() == after
    assert meta(jts) == (UID, UID, "0o600")
    assert result["restart_pending"] is True
    assert apply(tmp_path, running=True)["changes"] == []


def test_the_vnc_password_file_goes_when_vnc_is_off(tmp_path):
    apply(tmp_path, vnc_enabled=True)
    vnc = tmp_path / "opt" / "paper" / "secrets" / "vnc_password"
    vnc.write_text("x")
    assert apply(tmp_path, vnc_enabled=True)["changed"] is False
    assert apply(tmp_path, running=True, vnc_enabled=False)["restart_pending"] is True
    assert not vnc.exists()


@pytest.mark.parametrize("dest", ["../compose.yaml", "restart-pending", "a/b", ""])
def test_a_file_outside_the_instance_directory_is_refused(tmp_path, dest):
    result = apply(tmp_path, files=[{"dest": "compose.yaml", "content": "x", "mode": "0640"},
                                    {"dest": dest, "content": "x", "mode": "0640"}])
    assert result["failed"] is True
    assert "files[].dest must be a plain file name" in result["msg"]
    assert not (tmp_path / "opt").exists()


def test_a_symlink_in_place_of_a_file_is_refused_not_followed(tmp_path):
    apply(tmp_path)
    target = tmp_path / "elsewhere"
    target.write_text("keep\n")
    compose = tmp_path / "opt" / "paper" / "compose.yaml"
    compose.unlink()
    compose.symlink_to(target)
    result = apply(tmp_path)
    assert result["failed"] is True
    assert "compose.yaml" in result["msg"]
    assert target.read_text() == "keep\n"


def test_a_path_the_module_cannot_write_fails_naming_the_gateway_and_the_path(tmp_path):
    (tmp_path / "opt").write_text("")
    result = apply(tmp_path)
    assert result["failed"] and result["changed"] is False
    assert result["msg"] == f"gateway paper: {tmp_path / 'opt'} is not a directory"


def test_every_instance_in_one_call_each_with_its_own_result(tmp_path):
    arguments = {"root": str(tmp_path / "opt"), "uid": UID, "pending_text": PENDING, "instances": [
        {"name": name, "container": f"ibgw-{name}", "time_zone": "UTC", "vnc_enabled": False,
         "files": [{"dest": "compose.yaml", "content": f"name: {name}\n", "mode": "0640"}]}
        for name in ("live", "paper")]}
    first = call(tmp_path, arguments, running=True)
    assert [(row["name"], row["running"]) for row in first["instances"]] == [("live", True), ("paper", True)]
    assert (tmp_path / "opt" / "live" / "compose.yaml").read_text() == "name: live\n"
    assert (tmp_path / "opt" / "paper" / "compose.yaml").read_text() == "name: paper\n"
    assert first["changes"] == [path for row in first["instances"] for path in row["changes"]]
    assert first["changed"] is True and first["missing_images"] == []
    # A path that cannot be written fails naming its gateway; the first gateway's writes are reported as changes.
    (tmp_path / "opt" / "paper" / "compose.yaml").unlink()
    (tmp_path / "opt" / "paper" / "compose.yaml").mkdir()
    arguments["instances"][0]["files"][0]["content"] = "name: live-2\n"
    failed = call(tmp_path, arguments)
    assert failed["failed"] and failed["changed"] is True
    assert failed["msg"].startswith(f"gateway paper: {tmp_path / 'opt' / 'paper' / 'compose.yaml'}")


def test_a_missing_image_writes_nothing_and_is_named_and_check_mode_still_reports(tmp_path):
    wanted = {"images": ["img:1", "img:new"]}
    missing = apply(tmp_path, **wanted)
    assert (missing["changed"], missing["missing_images"], missing["instances"]) == (False, ["img:new"], [])
    assert not (tmp_path / "opt").exists()
    checked = apply(tmp_path, check=True, **wanted)
    assert checked["missing_images"] == ["img:new"] and checked["changed"] is True
    assert str(tmp_path / "opt" / "paper" / "compose.yaml") in checked["changes"]
    assert not (tmp_path / "opt").exists()
    assert apply(tmp_path, images=["img:1"])["changed"] is True
    assert (tmp_path / "opt" / "paper" / "compose.yaml").exists()


@pytest.mark.parametrize("name", ["../paper", "a/b", "..", ""])
def test_an_instance_name_outside_the_root_is_refused(tmp_path, name):
    result = apply(tmp_path, name=name)
    assert result["failed"] is True
    assert f"instances[].name must be a plain directory name (got '{name}')" in result["msg"]
    assert not (tmp_path / "opt").exists()
