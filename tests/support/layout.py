"""Where the checkout keeps the collection and the VM-side code, for tests that read or compare them."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from ibgw_ops.paths import COLLECTION

ROOT = Path(__file__).parents[2]
# The repository root is the collection (COLLECTION under it is a link back to the root).
COLLECTION_DIR = ROOT
# The checkout's entry on ansible.cfg's collections path.
COLLECTIONS_PATH = ROOT / COLLECTION.parts[0]
ROLES = COLLECTION_DIR / "roles"
PLAYBOOKS = COLLECTION_DIR / "playbooks"
MODULES = COLLECTION_DIR / "plugins" / "modules"
MODULE_UTILS = COLLECTION_DIR / "plugins" / "module_utils"
FILTERS = COLLECTION_DIR / "plugins" / "filter"
ON_HOST = ROOT / "src" / "ibgw_ops" / "on_host"
# How the collection's modules import the VM-side code.
MODULE_UTILS_PACKAGE = ".".join((*COLLECTION.parts[1:], "plugins", "module_utils"))


def on_host_sources() -> dict[str, bytes]:
    """The VM-side modules by file name, as the collection's module_utils must carry them."""
    return {path.name: path.read_bytes() for path in sorted(ON_HOST.glob("*.py")) if path.name != "__init__.py"}


@cache
def settings_filters() -> ModuleType:
    """The role's settings filter plugin (plugins/filter/ib_gateway_settings.py), loaded from the checkout."""
    spec = importlib.util.spec_from_file_location("ib_gateway_settings", FILTERS / "ib_gateway_settings.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def role_defaults(role: str) -> dict[str, Any]:
    """A role's defaults (roles/<role>/defaults/main.yml) as the checkout has them."""
    loaded = yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded
