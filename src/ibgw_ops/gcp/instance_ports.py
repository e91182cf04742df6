"""gcp.yml's ``api.ports`` against the gateway instances' API ports, before any Compute call.

The cloud firewall opens ``api.ports``; the gateways listen (and the VM's own firewall admits) on each instance's
``api_port``, as the inventory sets it for the VM: ``ib_gateway_instances`` over ``ib_gateway_mode_defaults``, the
role's defaults where the inventory sets neither. The two must be the same set: an instance port missing from
``api.ports`` is a gateway its Cloud Run jobs cannot reach, a port no instance uses is an opening to nothing that
the next instance would inherit unseen.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ibgw_ops import inventory
from ibgw_ops.errors import BadInput
from ibgw_ops.gcp.desired import names
from ibgw_ops.gcp.settings import GcpSettings
from ibgw_ops.paths import role_defaults


def check(directory: Path, settings: GcpSettings) -> None:
    """Refuse ``api.ports`` unless it holds exactly the instances' API ports (exit 2 naming both fields)."""
    ports = instance_ports(vm_vars(directory, names(settings)["vm"]))
    if ports is None:
        return
    missing = {name: port for name, port in ports.items() if port not in settings.api_ports}
    unused = sorted(set(settings.api_ports) - set(ports.values()))
    wanted = sorted(set(ports.values()))
    if missing:
        listed = ", ".join(f"{name} {port}" for name, port in missing.items())
        raise BadInput("api.ports", f"{list(settings.api_ports)} lacks the API port of instance {listed} "
                       "(ib_gateway_instances[].api_port, default ib_gateway_mode_defaults.<mode>.api_port): "
                       "its clients could not reach it", f"{wanted}, the instances' API ports")
    if unused:
        raise BadInput("api.ports", f"{list(settings.api_ports)} opens {unused}, which no instance uses "
                       "(ib_gateway_instances[].api_port, default ib_gateway_mode_defaults.<mode>.api_port)",
                       f"{wanted}, the instances' API ports")


def vm_vars(directory: Path, vm: str) -> dict[str, Any]:
    """The variables Ansible gives the VM from this inventory folder, also before provision has written hosts.yml."""
    with tempfile.TemporaryDirectory() as scratch:
        placeholder = Path(scratch) / "vm.yml"
        placeholder.write_text(yaml.safe_dump({"all": {"children": {inventory.GROUP: {"hosts": {vm: {}}}}}}))
        found: dict[str, Any] = json.loads(inventory.ansible_inventory(directory, "-i", str(placeholder),
                                                                      "--host", vm))
    return found


def instance_ports(hostvars: Mapping[str, Any]) -> dict[str, int] | None:
    """Each instance's API port (name -> port); None when the inventory computes them (Jinja): deploy checks them."""
    defaults = role_defaults("ib_gateway")
    instances = hostvars.get("ib_gateway_instances", defaults["ib_gateway_instances"])
    modes = hostvars.get("ib_gateway_mode_defaults", defaults["ib_gateway_mode_defaults"])
    if not isinstance(instances, list) or not isinstance(modes, Mapping):
        return None
    ports = {}
    for instance in instances:
        if not isinstance(instance, Mapping):
            return None
        port = str(instance.get("api_port", (modes.get(instance.get("mode")) or {}).get("api_port")))
        if not port.isdigit():
            return None
        ports[str(instance.get("name"))] = int(port)
    return ports
