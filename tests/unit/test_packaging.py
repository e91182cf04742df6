"""The wheel carries the collection, example inventories and the stand-in, and nothing that must stay out of it."""

from __future__ import annotations

import subprocess
import tarfile
import zipfile
from dataclasses import replace
from pathlib import Path

from hatchling.builders.wheel import WheelBuilder

from ibgw_ops.lab import images
from ibgw_ops.paths import COLLECTION, ansible_command
from tests.support.layout import COLLECTION_DIR, on_host_sources, role_defaults

ROOT = Path(__file__).parents[2]


# The collection's content: these top-level folders and files of the checkout, and nothing else of it.
COLLECTION_CONTENT = ("roles/", "playbooks/", "plugins/", "meta/", "README.md", "LICENSE", "CHANGELOG.md")


def collection_in_git() -> list[str]:
    """The checkout's tracked files that the collection carries (galaxy.yml becomes MANIFEST.json)."""
    in_git = subprocess.run(["git", "ls-files", "-z"], cwd=COLLECTION_DIR, capture_output=True, check=True)
    return sorted(name for name in in_git.stdout.decode().split("\0") if name.startswith(COLLECTION_CONTENT))


def wheel_files(tmp_path: Path) -> dict[str, bytes]:
    wheel = next(WheelBuilder(str(ROOT)).build(directory=str(tmp_path), versions=["standard"]))
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_wheel_carries_ansible_content_and_the_standin(tmp_path):
    files = wheel_files(tmp_path)
    names = list(files)
    collection = f"ibgw_ops/data/{COLLECTION.as_posix()}"
    for expected in (f"{collection}/playbooks/", f"{collection}/roles/", f"{collection}/plugins/modules/",
                     f"{collection}/galaxy.yml", "ibgw_ops/data/ansible.cfg", "ibgw_ops/data/inventory/lab/",
                     "ibgw_ops/lab/standin/Dockerfile", "ibgw_ops/lab/standin/gateway.py"):
        assert any(name.startswith(expected) for name in names), expected
    assert not [n for n in names if "__pycache__" in n or "/secrets/" in n or n.endswith(".pyc")]
    # The controller's on_host modules are the module_utils files themselves, byte for byte (links in the checkout).
    assert {Path(n).name: data for n, data in files.items()
            if n.startswith("ibgw_ops/on_host/") and not n.endswith("__init__.py")} == on_host_sources()


def test_image_tags_follow_their_recipes():
    assert images.VM.reference != images.BASE.reference
    assert images.VM.reference.endswith(images.VM.digest)
    assert "systemd" in images.VM.packages and "openssh-server" in images.VM.packages
    assert images.standin_reference() == images.standin_reference()
    assert images.standin_reference().startswith("ibgw-lab/ib-gateway:standin-")


def test_the_vm_image_holds_docker_engine_s_debian_packages_and_a_changed_list_is_a_new_image():
    # Downloaded, not installed: the role's first converge on each lab VM still installs them.
    assert images.VM.downloaded == tuple(role_defaults("docker_engine")["docker_engine_debian_packages"])
    assert not set(images.VM.downloaded) & set(images.VM.packages)
    assert replace(images.VM, downloaded=images.VM.downloaded[:1]).digest != images.VM.digest
    assert not images.BASE.downloaded


def test_the_collection_artifact_holds_the_checkout_s_files_byte_for_byte(tmp_path):
    built = subprocess.run([ansible_command("ansible-galaxy"), "collection", "build", str(COLLECTION_DIR),
                            "--output-path", str(tmp_path)], capture_output=True, text=True, check=False, timeout=120)
    assert built.returncode == 0, built.stdout + built.stderr
    with tarfile.open(next(tmp_path.glob("ibgw_ops-gateway-*.tar.gz"))) as artifact:
        members = {m.name: m for m in artifact.getmembers() if not m.isdir()}
        assert not [name for name, m in members.items() if not m.isfile()], "links must arrive as files"
        shipped = {name: artifact.extractfile(m).read() for name, m in members.items()  # type: ignore[union-attr]
                   if name not in ("MANIFEST.json", "FILES.json")}
    # Every collection file in git arrives as it is, and nothing of the controller, its tests or tooling.
    tracked = collection_in_git()
    assert sorted(shipped) == tracked
    assert shipped == {name: (COLLECTION_DIR / name).read_bytes() for name in tracked}
    assert {Path(name).name: data for name, data in shipped.items()
            if name.startswith("plugins/module_utils/")} == on_host_sources()
    # The wheel carries the same collection, file for file.
    prefix = f"ibgw_ops/data/{COLLECTION.as_posix()}/"
    in_wheel = {name.removeprefix(prefix): data for name, data in wheel_files(tmp_path).items()
                if name.startswith(prefix)}
    assert in_wheel == {**shipped, "galaxy.yml": (COLLECTION_DIR / "galaxy.yml").read_bytes()}
