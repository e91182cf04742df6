"""The ibgw_image_prune module run as Ansible runs it, against a fake docker holding images and containers."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from tests.unit.role_module import result_of, run_module

REPO = "gnzsnz/ib-gateway"
RUNNING, ROLLBACK, NEW, OLD, UNTAGGED, OTHER = (f"sha256:{c * 64}" for c in "123456")
IMAGES = [(RUNNING, f"{REPO}:10.45.1j"), (ROLLBACK, f"{REPO}:10.44.1a"), (NEW, f"{REPO}:10.50.1d"),
          (OLD, f"{REPO}:10.40.1a"), (UNTAGGED, f"{REPO}:<none>"), (OTHER, "debian:13")]
FAKE = """\
import json, sys
state = json.load(open(STATE))
args = sys.argv[1:]
ids = {ref: i for i, ref in state["images"]}
if args[:2] == ["image", "inspect"]:
    found = ids.get(args[-1]) or (args[-1] if args[-1] in ids.values() else None)
    print(found or "") if found else sys.exit(1)
elif args[0] == "ps":
    print("\\n".join(state["containers"]))
elif args[0] == "inspect":
    print("\\n".join(state["containers"][c] for c in args[3:]))
elif args[:2] == ["image", "ls"]:
    print("\\n".join(f"{i}\\t{ref}" for i, ref in state["images"] if ref.rpartition(":")[0] == args[-1]))
elif args[:2] == ["image", "rm"]:
    state["images"] = [(i, ref) for i, ref in state["images"] if args[2] not in (i, ref)]
    json.dump(state, open(STATE, "w"))
"""


def prune(tmp_path: Path, *, check_mode: bool = False) -> tuple[dict[str, Any], list[str]]:
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"images": IMAGES, "containers": {"c-live": RUNNING}}))
    docker = tmp_path / "bin" / "docker"
    docker.parent.mkdir()
    docker.write_text(f"#!{sys.executable}\nSTATE = {str(state)!r}\n{FAKE}")
    docker.chmod(0o755)
    point = tmp_path / "rollback-image"
    point.write_text(json.dumps({"reference": f"{REPO}:10.44.1a", "image_id": ROLLBACK, "digest": ""}))
    arguments = {"images": [f"{REPO}:10.50.1d"], "rollback_points": [str(point), str(tmp_path / "none")],
                 "_ansible_check_mode": check_mode}
    env = {**os.environ, "PATH": f"{docker.parent}:{os.environ['PATH']}"}
    report = result_of(run_module("ibgw_image_prune", arguments, tmp_path, env=env))
    return report, [ref for _, ref in json.loads(state.read_text())["images"]]


def test_only_the_repository_s_unneeded_images_go(tmp_path):
    report, left = prune(tmp_path)
    assert report["changed"] is True
    assert report["removed"] == [f"{REPO}:10.40.1a", UNTAGGED]
    assert left == [f"{REPO}:10.45.1j", f"{REPO}:10.44.1a", f"{REPO}:10.50.1d", "debian:13"]


def test_check_mode_reports_and_removes_nothing(tmp_path):
    report, left = prune(tmp_path, check_mode=True)
    assert report["removed"] == [f"{REPO}:10.40.1a", UNTAGGED]
    assert left == [ref for _, ref in IMAGES]
