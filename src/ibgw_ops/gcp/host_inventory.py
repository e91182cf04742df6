"""The provisioned VM as a static inventory host (the lab's shape), reached through IAP or its external IP.

Provision knows the VM's name, zone and addresses, so no dynamic inventory plugin (and no second source of
truth) is needed. Host keys are trusted on first use into a file of the deployment's own, removed by destroy,
so a recreated VM does not trip over its predecessor's keys.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from ibgw_ops import inventory
from ibgw_ops.gcp.desired import names
from ibgw_ops.gcp.settings import GcpSettings
from ibgw_ops.paths import state_dir


def known_hosts(settings: GcpSettings) -> Path:
    """The deployment's own known_hosts file."""
    return state_dir() / "gcp" / f"{settings.project}-{settings.deployment}" / "known_hosts"


def host_vars(settings: GcpSettings, external_ip: str, egress_ip: str) -> dict[str, Any]:
    """Connection and address variables of the VM; the egress IP is what IBKR or an allow-list sees ("" auto)."""
    ssh_options = [
        "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={known_hosts(settings)}",
        "-o", "StrictHostKeyChecking=accept-new", "-o", "ConnectTimeout=20",
    ]
    vm = names(settings)["vm"]
    if settings.ssh_via == "iap":
        proxy = (f"gcloud compute start-iap-tunnel {vm} 22 --listen-on-stdin --zone {settings.zone} "
                 f"--project {settings.project} --verbosity=warning")
        ssh_options += ["-o", f"ProxyCommand={proxy}"]
        address = vm
    else:
        address = external_ip
    return {
        "ansible_host": address,
        "ansible_user": settings.ssh_user,
        "ansible_ssh_private_key_file": settings.ssh_private_key_file,
        "ansible_ssh_common_args": shlex.join(ssh_options),
        "ibgw_internal_ip": settings.internal_ip,
        "ibgw_external_ip": external_ip,
        "ibgw_egress_ip": egress_ip,
        # Cloud Run jobs connect to the internal address; the host firewall admits the same sources as GCP's.
        "ib_gateway_bind_address": settings.internal_ip,
        "host_firewall_api_source_ranges": list(settings.api_source_ranges),
    }


def write(directory: Path, settings: GcpSettings, external_ip: str, egress_ip: str) -> bool:
    """Write ``<directory>/hosts.yml`` for the VM; return whether it changed."""
    known_hosts(settings).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return inventory.write_static(
        directory, {names(settings)["vm"]: host_vars(settings, external_ip, egress_ip)},
        f"Written by 'ibgw-ops provision' for {settings.project}/{settings.zone}; settings go in gcp.yml "
        "and group_vars/.")


def remove(directory: Path, settings: GcpSettings) -> None:
    """Forget the destroyed VM: its hosts file and its host keys."""
    for path in (directory / "hosts.yml", known_hosts(settings)):
        path.unlink(missing_ok=True)
