"""The static inventory shape shared by the lab and GCP, and which inventory a verb acts on.

Both writers produce ``<dir>/hosts.yml`` (one ``ibgw_gateways`` group, connection settings per host) and
``<dir>/group_vars/ibgw_gateways.yml`` (the gateway settings), so playbooks never care where a VM lives.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ibgw_ops import environment, inventory_files, vault
from ibgw_ops.errors import BadInput, ExitCode, OpsError
from ibgw_ops.paths import ansible_command, ansible_env, state_dir

INVENTORY_ENV = "IBGW_OPS_INVENTORY"
GROUP = "ibgw_gateways"


def lab_inventory_dir() -> Path:
    """Where ``lab up`` writes the lab VM's inventory."""
    return state_dir() / "lab" / "inventory"


def resolve(flag: str | None) -> Path:
    """The inventory a verb acts on: ``--inventory``, else ``$IBGW_OPS_INVENTORY``, else the lab's."""
    if flag:
        path, field = Path(flag), "--inventory"
    elif named := environment.value(INVENTORY_ENV):
        path, field = Path(named), INVENTORY_ENV
    else:
        path, field = lab_inventory_dir(), "inventory"
        if not path.exists():
            raise BadInput(field, "no inventory given and no lab inventory yet",
                           "--inventory PATH, $IBGW_OPS_INVENTORY, or run 'ibgw-ops lab up' first")
    if not path.exists():
        raise BadInput(field, f"{path} does not exist", "an inventory file or folder")
    return inventory_files.check(path.resolve())


def write_static(directory: Path, hosts: Mapping[str, Mapping[str, Any]], header: str) -> bool:
    """Write ``hosts.yml`` for ``hosts`` (name -> connection vars); return whether the file changed.

    Only the hosts file is generated: settings under ``group_vars/`` belong to the operator.
    """
    document = {"all": {"children": {GROUP: {"hosts": {name: dict(v) for name, v in hosts.items()}}}}}
    text = f"# {header}\n" + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
    return _write_if_changed(directory / "hosts.yml", text)


def seed_group_vars(directory: Path, example: Path) -> None:
    """Copy an example inventory's ``group_vars`` once; later edits by the operator are kept."""
    for source in sorted((example / "group_vars").glob("*.yml")):
        target = directory / "group_vars" / source.name
        if not target.exists():
            _write_if_changed(target, source.read_text())


def _write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return True


def ansible_inventory(path: Path, *options: str) -> str:
    """What ``ansible-inventory -i PATH OPTIONS`` prints: the inventory as Ansible resolves it (vars, groups)."""
    # The shipped ansible.cfg, as for the playbook runs: a GCP inventory's gcp.yml is not read as hosts.
    result = subprocess.run([ansible_command("ansible-inventory"), "-i", str(path), *options],
                            capture_output=True, text=True, check=False,
                            env={**os.environ, **ansible_env()})
    if result.returncode != 0:
        said = result.stderr.splitlines()
        raise vault.refusal(said, path, prompted=False) or vault.unparsed(said, path, None) or OpsError(
            f"ansible-inventory could not read {path}: {result.stderr.strip()}", ExitCode.BAD_INPUT)
    return result.stdout


def host_vars(path: Path) -> dict[str, dict[str, Any]]:
    """Every gateway host of the inventory and its variables, as Ansible resolves them."""
    listing = json.loads(ansible_inventory(path, "--list"))
    names = listing.get(GROUP, {}).get("hosts", [])
    every = listing.get("_meta", {}).get("hostvars", {})
    return {name: every.get(name, {}) for name in names}
