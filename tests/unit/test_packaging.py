"""The wheel carries the collection, example inventories and the stand-in, and nothing that must stay out of it."""

from __future__ import annotations

import zipfile
from pathlib import Path

from hatchling.builders.wheel import WheelBuilder

from ibgw_ops.lab import images
from ibgw_ops.paths import COLLECTION
from tests.support.layout import on_host_sources

ROOT = Path(__file__).parents[2]


def test_wheel_carries_ansible_content_and_the_standin(tmp_path):
    wheel = next(WheelBuilder(str(ROOT)).build(directory=str(tmp_path), versions=["standard"]))
    names = zipfile.ZipFile(wheel).namelist()
    collection = f"ibgw_ops/data/{COLLECTION.as_posix()}"
    for expected in (f"{collection}/playbooks/", f"{collection}/roles/", f"{collection}/plugins/modules/",
                     f"{collection}/galaxy.yml", "ibgw_ops/data/ansible.cfg", "ibgw_ops/data/inventory/lab/",
                     "ibgw_ops/lab/standin/Dockerfile", "ibgw_ops/lab/standin/gateway.py"):
        assert any(name.startswith(expected) for name in names), expected
    assert not [n for n in names if "__pycache__" in n or "/secrets/" in n or n.endswith(".pyc")]
    # The VM's module_utils are the on_host files themselves, byte for byte (symlinks in the checkout).
    with zipfile.ZipFile(wheel) as archive:
        shipped = {Path(n).name: archive.read(n) for n in names if n.startswith(f"{collection}/plugins/module_utils/")}
    assert shipped == on_host_sources()


def test_image_tags_follow_their_recipes():
    assert images.VM.reference != images.BASE.reference
    assert images.VM.reference.endswith(images.VM.digest)
    assert "systemd" in images.VM.packages and "openssh-server" in images.VM.packages
    assert images.standin_reference() == images.standin_reference()
    assert images.standin_reference().startswith("ibgw-lab/ib-gateway:standin-")
