"""The ibgw_status module run as Ansible runs it, against a fake docker: which image and digest a container runs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.unit.role_module import result_of, run_module

IMAGE_ID = "sha256:" + "1" * 64
OURS, OTHER = "sha256:" + "a" * 64, "sha256:" + "b" * 64
STATE = {"Running": True, "Status": "running", "StartedAt": "2026-11-25T09:55:00.123456789Z"}


def fake_docker(directory: Path, reference: str, repo_digests: list[str]) -> Path:
    """A docker that knows one container, ibgw-live, and its image."""
    script = directory / "docker"
    container = json.dumps({"State": STATE, "RestartCount": 0, "Id": "c" * 64, "Config": {"Image": reference},
                            "Image": IMAGE_ID})
    script.write_text(
        "#!/bin/sh\n"
        f'[ "$1 $2" = "image inspect" ] && {{ echo \'{json.dumps(repo_digests)}\'; exit 0; }}\n'
        f'[ "$1" = inspect ] && [ "$4" = ibgw-live ] && {{ printf \'%s\\n\' \'{container}\'; exit 0; }}\n'
        "exit 1\n")
    script.chmod(0o755)
    return directory


def run(tmp_path: Path, container: str, docker_dir: Path) -> dict[str, Any]:
    arguments = {"container": container, "pending_marker": str(tmp_path / "restart-pending"), "port": 4001,
                 "probe": False, "_ansible_check_mode": True}
    return result_of(run_module("ibgw_status", arguments, tmp_path, env={**os.environ, "PATH": str(docker_dir)}))


@pytest.mark.parametrize(("reference", "digests", "expected"), [
    ("gnzsnz/ib-gateway:10.45.1j", [f"other/ib-gateway@{OTHER}", f"gnzsnz/ib-gateway@{OURS}"], OURS),
    (f"gnzsnz/ib-gateway:10.45.1j@{OURS}", [f"gnzsnz/ib-gateway@{OURS}"], OURS),
    ("localhost:5000/ib-gateway:10.45.1j", [f"mirror/ib-gateway@{OTHER}"], OTHER),
    ("ibgw-lab/standin:1", [], ""),
])
def test_the_digest_is_the_one_of_the_container_s_repository(tmp_path, reference, digests, expected):
    report = run(tmp_path, "ibgw-live", fake_docker(tmp_path, reference, digests))
    assert report["changed"] is False
    assert (report["container"], report["image"], report["image_id"]) == ("running", reference, IMAGE_ID)
    assert report["image_digest"] == expected
    assert report["probe"] == "not probed"


def test_a_missing_container_or_docker_reports_absent(tmp_path):
    absent = {"container": "absent", "image": "", "image_id": "", "image_digest": "", "restart_pending": False}
    report = run(tmp_path, "ibgw-paper", fake_docker(tmp_path, "x:1", []))
    assert {key: report[key] for key in absent} == absent
    no_docker = tmp_path / "empty"
    no_docker.mkdir()
    report = run(tmp_path, "ibgw-live", no_docker)
    assert {key: report[key] for key in absent} == absent
