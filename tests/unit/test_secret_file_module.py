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


def run(fake: Fake, dest: Path, *, check_mode: bool = False, **args: Any) -> dict[str, Any]:
    """Run the module in its own process; the whole output must hold neither the value nor the token."""
    arguments = {"instance": "paper", "secret": NAME, "dest": str(dest), "owner": os.getuid(), "group": os.getgid(),
                 "metadata_url": f"{fake.server.url}/computeMetadata/v1", "secret_manager_url": f"{fake.server.url}/v1",
                 "timeout": 5, "_ansible_check_mode": check_mode, **args}
    arguments = {key: value for key, value in arguments.items() if value is not None}
    result = run_module("ibgw_secret_file", arguments, dest.parent.parent)
    output = result.stdout + result.stderr
    for secret in [fake.token, *fake.values]:
        assert secret not in output
    return result_of(result)


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
    result = run(fake, dest)
    assert result["failed"] is True
    assert result["error"] == error
    for word in words:
        assert word in result["msg"]
    assert (dest.read_bytes(), dest.stat().st_ino) == before


def test_an_unreachable_metadata_server_means_not_on_gce(fake, dest):
    result = run(fake, dest, metadata_url=f"http://127.0.0.1:{free_port()}/computeMetadata/v1")
    assert result["error"] == "metadata"
    assert "is unreachable" in result["msg"] and "not a GCE VM, or no service account" in result["msg"]
    assert "gateway paper" in result["msg"] and NAME in result["msg"]
    assert not dest.exists()


def test_a_vm_without_a_service_account(fake, dest):
    fake.save(metadata_status=404)
    result = run(fake, dest)
    assert result["error"] == "metadata"
    assert "no default service account" in result["msg"]


def test_a_redirect_is_not_followed_with_the_token(fake, dest):
    other = "projects/ibgw-unit/secrets/other/versions/1"
    fake.set(other, f"canary-{uuid.uuid4()}")
    fake.set(NAME, status=302, location=other)
    result = run(fake, dest)
    assert result["error"] == "http"
    assert "HTTP 302" in result["msg"]
    assert not any(r["path"].startswith(f"/v1/{other}") for r in fake.server.requests())
    assert not dest.exists()


def test_a_payload_that_is_not_base64(fake, dest):
    fake.set(NAME, data="%%%not-base64%%%")
    result = run(fake, dest)
    assert result["error"] == "payload"
    assert not dest.exists()


def test_a_malformed_version_name_is_refused_before_any_request(fake, dest):
    result = run(fake, dest, secret="projects/p/secrets/s/versions/../../other")
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
