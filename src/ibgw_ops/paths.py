"""Where ibgw-ops keeps its state and finds the collection (roles, playbooks, modules) and inventories it ships."""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ibgw_ops import environment
from ibgw_ops.errors import BadInput

STATE_DIR_ENV = "IBGW_OPS_STATE_DIR"
# The collection ibgw_ops.gateway, relative to data_dir(), where ansible.cfg puts it on the collections path: in a
# checkout a link to the repository root (which is the collection), in the wheel the collection's files.
COLLECTION = Path("collections", "ansible_collections", "ibgw_ops", "gateway")


def state_dir() -> Path:
    """Per-user state (lab keys, generated inventories), overridable for tests and shared hosts."""
    override = environment.value(STATE_DIR_ENV)
    if override:
        path = Path(override).expanduser().resolve()
        if path.exists() and not path.is_dir():
            raise BadInput(STATE_DIR_ENV, f"{path} is not a folder",
                           f"{environment.ALLOWED[STATE_DIR_ENV]}, or unset it")
        return path
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "ibgw-ops"


def data_dir() -> Path:
    """The folder holding ``ansible.cfg``, the collection and ``inventory/``.

    A wheel carries them inside the package (``ibgw_ops/data``); an editable install of a checkout has
    them at the repository's top level instead.
    """
    packaged = Path(str(resources.files("ibgw_ops"))) / "data"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2]


def role_defaults(role: str) -> dict[str, Any]:
    """A role's defaults (roles/<role>/defaults/main.yml) as the shipped collection has them."""
    loaded = yaml.safe_load((data_dir() / COLLECTION / "roles" / role / "defaults" / "main.yml").read_text())
    return dict(loaded)


def playbook_path(name: str) -> Path:
    """A playbook of the shipped collection, by file name (``site.yml``)."""
    return data_dir() / COLLECTION / "playbooks" / name


def ansible_env() -> dict[str, str]:
    """Environment for every Ansible CLI ibgw-ops runs: the shipped ansible.cfg, and no Python warnings.

    Python warnings (a CryptographyDeprecationWarning at each start) would reach the operator's messages and cron
    mail with nothing to act on; Ansible's own warnings are no Python warnings and stay.
    """
    return {"ANSIBLE_CONFIG": str(data_dir() / "ansible.cfg"), "PYTHONWARNINGS": "ignore"}


def ansible_command(name: str) -> str:
    """Path of an Ansible CLI from this interpreter's environment, so cron's minimal PATH cannot hide it."""
    beside = _interpreter_bin() / name
    return str(beside) if beside.exists() else name


def search_path() -> str:
    """``$PATH`` with this interpreter's folder first, for children that look up Ansible's CLIs themselves."""
    return os.pathsep.join(filter(None, (str(_interpreter_bin()), os.environ.get("PATH"))))


def _interpreter_bin() -> Path:
    return Path(sys.executable).parent
