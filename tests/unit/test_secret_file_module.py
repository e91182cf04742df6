"""The ibgw_secret_file module run as Ansible runs it (a process reading its arguments): given values, and
Secret Manager versions against the fake."""

from __future__ import annotations

import base64
import json
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.support.fake_secret_manager import FakeServer
from tests.unit.role_module import result_of, run_module

NAME = "projects/ibgw-unit/secrets/tws-paper/versions/latest"


class Fake:
    """The fake server in a thread, with its state file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.token = f"token-{uuid.uuid4()}"
        self.secrets: dict[str, dict[str, Any]] = {}
        self.values: list[str] = []
        self.set(NAME, f"canary-{uuid.uuid4()}")
        self.server = FakeServer(directory)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def set(self, name: str, value: str | None = None, **fields: Any) -> None:
        entry = {"status": 200, "version": name.replace("latest", "7")}
        if value is not None:
            self.values.append(value)
            entry["data"] = base64.b64encode(value.encode()).decode()
        self.secrets[name] = {**entry, **fields}
        self.save()

    def save(self, **extra: Any) -> None:
        state = {"token": self.token, "email": "vm-sa@ibgw-unit.iam.gserviceaccount.com", "secrets": self.secrets,
                 **extra}
        (self.directory / "state.json").write_text(json.dumps(state))

    def value(self, name: str = NAME) -> bytes:
        return base64.b64decode(self.secrets[name]["data"])


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[Fake]:
    directory = tmp_path / "fake"
    directory.mkdir()
    server = Fake(directory)
    yield server
    server.server.shutdown()
    server.server.server_close()


SHARED = ("metadata_url", "secret_manager_url", "timeout")


def run_files(fake: Fake, files: list[dict[str, Any]], *, check_mode: bool = False,
              **shared: Any) -> dict[str, Any]:
    """Run the module in its own process, its arguments echoed as with -vvv; the whole output must hold neither a
    value nor the token."""
    arguments = {"files": files, "metadata_url": f"{fake.server.url}/computeMetadata/v1",
                 "secret_manager_url": f"{fake.server.url}/v1", "timeout": 5, "_ansible_check_mode": check_mode,
                 "_ansible_verbosity": 3, "_ansible_inject_invocation": True, **shared}
    result = run_module("ibgw_secret_file", arguments, Path(files[0]["dest"]).parent.parent)
    output = result.stdout + result.stderr
    for secret in [fake.token, *fake.values, *(file["content"] for file in files if "content" in file)]:
        assert secret not in output
    found = result_of(result)
    echoed = found["invocation"]["module_args"]["files"]
    assert [entry["content"] is None for entry in echoed] == ["content" not in file for file in files]
    assert {entry["content"] for entry in echoed} <= {None, "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"}
    return found


def file_args(dest: Path, **fields: Any) -> dict[str, Any]:
    """One element of files: paper's Secret Manager file unless fields say otherwise (None drops a field)."""
    entry = {"instance": "paper", "secret": NAME, "dest": str(dest), "owner": os.getuid(), "group": os.getgid(),
             **fields}
    return {key: value for key, value in entry.items() if value is not None}


def run(fake: Fake, dest: Path, *, check_mode: bool = False, **args: Any) -> dict[str, Any]:
    """The module with one file; its result's first file's fields beside the call's own (changed, failures)."""
    shared = {key: args.pop(key) for key in SHARED if key in args}
    result = run_files(fake, [file_args(dest, **args)], check_mode=check_mode, **shared)
    return {**result.get("files", [{}])[0], **result}


def failure(result: dict[str, Any]) -> dict[str, Any]:
    """The one file's failure; the call failed and its message is the file's."""
    assert result["failed"] is True
    assert [entry["msg"] for entry in result["failures"]] == [result["msg"]]
    assert result["files"][0]["changed"] is False
    return dict(result["failures"][0])


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    secrets = tmp_path / "instance" / "secrets"
    secrets.mkdir(parents=True, mode=0o700)
    return secrets / "tws_password"


def test_writes_the_value_owned_and_0400_then_reports_no_change(fake, dest):
    first = run(fake, dest)
    assert first["changed"] is True
    assert first["version"] == "projects/ibgw-unit/secrets/tws-paper/versions/7"
    assert dest.read_bytes() == fake.value()
    info = dest.stat()
    assert (info.st_mode & 0o777, info.st_uid, info.st_gid) == (0o400, os.getuid(), os.getgid())
    assert run(fake, dest)["changed"] is False
    assert os.listdir(dest.parent) == ["tws_password"]
    requests = fake.server.requests()
    assert [r["path"].rsplit("/", 1)[-1] for r in requests] == ["token", "latest:access"] * 2
    assert all(r["flavor_ok"] for r in requests if "computeMetadata" in r["path"])
    assert all(r["bearer_ok"] for r in requests if r["path"].endswith(":access"))


def test_a_new_value_replaces_the_file_by_rename(fake, dest):
    run(fake, dest)
    inode = dest.stat().st_ino
    fake.set(NAME, f"canary-{uuid.uuid4()}")
    assert run(fake, dest)["changed"] is True
    assert dest.read_bytes() == fake.value()
    assert dest.stat().st_ino != inode


def test_a_wrong_mode_is_a_change(fake, dest):
    run(fake, dest)
    dest.chmod(0o644)
    assert run(fake, dest)["changed"] is True
    assert dest.stat().st_mode & 0o777 == 0o400


def test_check_mode_reports_without_writing(fake, dest):
    assert run(fake, dest, check_mode=True)["changed"] is True
    assert not dest.exists()
    run(fake, dest)
    fake.set(NAME, f"canary-{uuid.uuid4()}")
    before = dest.read_bytes()
    assert run(fake, dest, check_mode=True)["changed"] is True
    assert dest.read_bytes() == before


@pytest.mark.parametrize(("status", "error", "words"), [
    (403, "permission_denied", ["gateway paper", NAME, "vm-sa@ibgw-unit.iam.gserviceaccount.com lacks "
                                "roles/secretmanager.secretAccessor", "PERMISSION_DENIED"]),
    (404, "not_found", ["gateway paper", NAME, "no such secret or version"]),
])
def test_http_errors_name_the_instance_and_the_secret_and_keep_the_file(fake, dest, status, error, words):
    run(fake, dest)
    before = (dest.read_bytes(), dest.stat().st_ino)
    fake.set(NAME, status=status)
    result = failure(run(fake, dest))
    assert (result["instance"], result["secret"], result["dest"]) == ("paper", NAME, str(dest))
    assert result["error"] == error
    for word in words:
        assert word in result["msg"]
    assert (dest.read_bytes(), dest.stat().st_ino) == before


def test_an_unreachable_metadata_server_means_not_on_gce(fake, dest):
    result = failure(run(fake, dest, metadata_url=f"http://127.0.0.1:{free_port()}/computeMetadata/v1"))
    assert result["error"] == "metadata"
    assert "is unreachable" in result["msg"] and "not a GCE VM, or no service account" in result["msg"]
    assert "gateway paper" in result["msg"] and NAME in result["msg"]
    assert not dest.exists()


def test_a_vm_without_a_service_account(fake, dest):
    fake.save(metadata_status=404)
    result = failure(run(fake, dest))
    assert result["error"] == "metadata"
    assert "no default service account" in result["msg"]


def test_a_redirect_is_not_followed_with_the_token(fake, dest):
    other = "projects/ibgw-unit/secrets/other/versions/1"
    fake.set(other, f"canary-{uuid.uuid4()}")
    fake.set(NAME, status=302, location=other)
    result = failure(run(fake, dest))
    assert result["error"] == "http"
    assert "HTTP 302" in result["msg"]
    assert not any(r["path"].startswith(f"/v1/{other}") for r in fake.server.requests())
    assert not dest.exists()


def test_a_payload_that_is_not_base64(fake, dest):
    fake.set(NAME, data="%%%not-base64%%%")
    result = failure(run(fake, dest))
    assert result["error"] == "payload"
    assert not dest.exists()


def test_a_malformed_version_name_is_refused_before_any_request(fake, dest):
    result = failure(run(fake, dest, secret="projects/p/secrets/s/versions/../../other"))
    assert result["error"] == "bad_name"
    assert fake.server.requests() == []


def test_a_given_value_is_written_0400_and_compared_without_being_reported(fake, dest):
    first = run(fake, dest, secret=None, content="given-Pw-1")
    assert first["changed"] is True and dest.read_text() == "given-Pw-1"
    assert dest.stat().st_mode & 0o777 == 0o400
    assert run(fake, dest, secret=None, content="given-Pw-1")["changed"] is False
    assert run(fake, dest, secret=None, content="given-Pw-2", check_mode=True)["changed"] is True
    assert dest.read_text() == "given-Pw-1"
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name], "no temporary file is left"
    assert fake.server.requests() == [], "a given value needs no Secret Manager"


def test_one_call_writes_a_given_value_and_a_secret_manager_version(fake, dest):
    given = dest.with_name("vnc_password")
    result = run_files(fake, [file_args(given, secret=None, content="given-Pw-3"), file_args(dest)])
    assert result["changed"] is True
    assert [(f["dest"], f["changed"], f["version"]) for f in result["files"]] == [
        (str(given), True, None), (str(dest), True, "projects/ibgw-unit/secrets/tws-paper/versions/7")]
    assert (given.read_text(), dest.read_bytes()) == ("given-Pw-3", fake.value())
    assert {p.stat().st_mode & 0o777 for p in (given, dest)} == {0o400}


def test_the_token_is_asked_once_for_every_secret_manager_file(fake, dest):
    other = "projects/ibgw-unit/secrets/vnc-paper/versions/2"
    fake.set(other, f"canary-{uuid.uuid4()}")
    vnc = dest.with_name("vnc_password")
    result = run_files(fake, [file_args(dest), file_args(vnc, secret=other)])
    assert [f["changed"] for f in result["files"]] == [True, True]
    assert (dest.read_bytes(), vnc.read_bytes()) == (fake.value(), fake.value(other))
    assert [r["path"].rsplit("/", 1)[-1] for r in fake.server.requests()] == ["token", "latest:access", "2:access"]


def test_a_failing_file_does_not_stop_the_others_and_is_named_without_a_value(fake, dest):
    denied = "projects/ibgw-unit/secrets/live-password/versions/latest"
    fake.set(denied, f"canary-{uuid.uuid4()}", status=403)
    live = dest.parent.parent.parent / "live" / "secrets" / "tws_password"
    live.parent.mkdir(parents=True)
    vnc = dest.with_name("vnc_password")
    result = run_files(fake, [file_args(live, instance="live", secret=denied), file_args(dest),
                              file_args(vnc, secret=None, content="given-Pw-4")])
    assert result["failed"] is True and result["changed"] is True
    assert [f["changed"] for f in result["files"]] == [False, True, True]
    assert (dest.read_bytes(), vnc.read_text()) == (fake.value(), "given-Pw-4")
    assert not live.exists()
    [failed] = result["failures"]
    assert (failed["instance"], failed["secret"], failed["dest"], failed["error"]) == (
        "live", denied, str(live), "permission_denied")
    assert failed["msg"].startswith(f"gateway live, secret {denied}: permission denied")
    assert failed["msg"] == result["msg"]
    assert set(failed) == {"instance", "secret", "dest", "error", "msg"}


def test_a_metadata_failure_is_asked_once_and_fails_each_secret_manager_file(fake, dest):
    other = "projects/ibgw-unit/secrets/vnc-paper/versions/2"
    fake.save(metadata_status=500)
    given = dest.parent.parent / "alert-webhook"
    result = run_files(fake, [file_args(dest), file_args(dest.with_name("vnc_password"), secret=other),
                              file_args(given, instance="alert destinations", secret=None, content="https://hook/1")])
    assert [(f["secret"], f["error"]) for f in result["failures"]] == [(NAME, "metadata"), (other, "metadata")]
    assert [f["msg"].split(": ", 1)[0] for f in result["failures"]] == [
        f"gateway paper, secret {NAME}", f"gateway paper, secret {other}"]
    assert given.read_text() == "https://hook/1" and not dest.exists()
    assert [r["path"].rsplit("/", 1)[-1] for r in fake.server.requests()] == ["token"]


def test_check_mode_with_several_files_writes_none(fake, dest):
    vnc = dest.with_name("vnc_password")
    vnc.write_text("old")
    vnc.chmod(0o400)
    files = [file_args(dest), file_args(vnc, secret=None, content="given-Pw-5")]
    result = run_files(fake, files, check_mode=True)
    assert [f["changed"] for f in result["files"]] == [True, True]
    assert not dest.exists() and vnc.read_text() == "old"
    run_files(fake, files)
    assert [f["changed"] for f in run_files(fake, files, check_mode=True)["files"]] == [False, False]


def test_content_and_secret_together_are_refused_before_anything(fake, dest):
    result = run_files(fake, [file_args(dest, content="given-Pw-6")])
    assert result["failed"] is True and "mutually exclusive: content|secret found in files" in result["msg"]
    assert "failures" not in result and not dest.exists() and fake.server.requests() == []
