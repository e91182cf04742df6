"""The resources one deployment consists of, as pure data derived from its settings.

Bodies use the client's field names (``I_p_protocol``, ``network_i_p``, ``type_``) and hold only the fields
ibgw-ops manages; a firewall rule states every field that decides who reaches what, empty ones included, so that
anything added to it is drift. ``needs`` names the resources that must exist first, which makes the list a
dependency graph.
Networks, subnetworks, firewalls and routers take no labels in the Compute API, so ownership is marked in their
description; addresses and the instance carry labels as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ibgw_ops.gcp.settings import IAP_RANGE, GcpSettings

OWNER_LABEL = "managed-by"
OWNER_VALUE = "ibgw-ops"
DEPLOYMENT_LABEL = "ibgw-deployment"
# Instance metadata that decides who may log in: OS Login only, no project-wide SSH keys, no serial console. Stated
# on the VM itself, so that project-wide metadata cannot turn them around.
LOGIN_METADATA = {"enable-oslogin": "TRUE", "block-project-ssh-keys": "TRUE", "serial-port-enable": "FALSE"}
# A VM for the whole week: host maintenance live-migrates it, a crash restarts it, and it is never Spot (which GCP
# may stop at any time). GCP's defaults too, stated so that drift from them is seen.
SCHEDULING = {"on_host_maintenance": "MIGRATE", "automatic_restart": True, "provisioning_model": "STANDARD",
              "preemptible": False}
# The VM service account's OAuth scope: IAM roles, not scopes, narrow what it may do.
VM_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
NETWORKS, SUBNETWORKS, ADDRESSES, FIREWALLS, ROUTERS, INSTANCES = (
    "networks", "subnetworks", "addresses", "firewalls", "routers", "instances")
# The API's argument name for one resource of each collection (also how the CLI names a kind).
SINGULAR = {NETWORKS: "network", SUBNETWORKS: "subnetwork", ADDRESSES: "address", FIREWALLS: "firewall",
            ROUTERS: "router", INSTANCES: "instance"}


@dataclass(frozen=True)
class Resource:
    """One cloud resource ibgw-ops owns: its collection, name, managed fields and what it needs first."""

    kind: str
    name: str
    body: dict[str, Any]
    needs: tuple[str, ...]
    summary: str


def owner_mark(deployment: str) -> str:
    """The description prefix marking a resource (of any kind) as this deployment's."""
    return f"ibgw-ops deployment {deployment}:"


def owned_by(resource: dict[str, Any], deployment: str) -> bool:
    """Whether a resource read from the API belongs to this deployment (label or description mark)."""
    labels = resource.get("labels") or {}
    if labels.get(OWNER_LABEL) == OWNER_VALUE and labels.get(DEPLOYMENT_LABEL) == deployment:
        return True
    return str(resource.get("description", "")).startswith(owner_mark(deployment))


def names(settings: GcpSettings) -> dict[str, str]:
    """Every resource's name, from the deployment's prefix."""
    prefix = settings.deployment
    return {
        "network": f"{prefix}-net", "subnet": f"{prefix}-subnet", "run_subnet": f"{prefix}-run-egress",
        "internal_ip": f"{prefix}-vm-internal", "external_ip": f"{prefix}-vm-external",
        "nat_ip": f"{prefix}-nat-external",
        "api_rule": f"{prefix}-allow-api", "ssh_rule": f"{prefix}-allow-ssh", "router": f"{prefix}-router",
        "vm": f"{prefix}-vm", "tag": f"{prefix}-gateway",
    }


def resources(settings: GcpSettings) -> list[Resource]:
    """The deployment's resources in dependency order (each after the ones it needs)."""
    n, region = names(settings), settings.region
    network, subnet = _links(settings)
    labels = _labels(settings)

    def described(what: str) -> str:
        return _described(settings, what)

    found = [
        Resource(NETWORKS, n["network"], {
            "name": n["network"], "description": described("gateway VPC"), "auto_create_subnetworks": False,
            "routing_config": {"routing_mode": "REGIONAL"},
        }, (), "custom mode, regional routing"),
        Resource(SUBNETWORKS, n["subnet"], {
            "name": n["subnet"], "description": described("gateway subnet"), "network": network,
            "ip_cidr_range": settings.subnet_cidr, "private_ip_google_access": True,
        }, (n["network"],), f"{settings.subnet_cidr} in {region}, private Google access"),
    ]
    if settings.cloud_run_subnet_cidr:
        found.append(Resource(SUBNETWORKS, n["run_subnet"], {
            "name": n["run_subnet"], "description": described("Cloud Run Direct VPC egress"), "network": network,
            "ip_cidr_range": settings.cloud_run_subnet_cidr, "private_ip_google_access": True,
        }, (n["network"],), f"{settings.cloud_run_subnet_cidr} in {region}, for Cloud Run jobs"))
    found.append(Resource(ADDRESSES, n["internal_ip"], {
        "name": n["internal_ip"], "description": described("the VM's static internal IP"), "labels": labels,
        "address_type": "INTERNAL", "purpose": "GCE_ENDPOINT", "subnetwork": subnet,
        "address": settings.internal_ip,
    }, (n["subnet"],), f"internal {settings.internal_ip}"))
    if settings.public_ip:
        found.append(Resource(ADDRESSES, n["external_ip"], {
            "name": n["external_ip"], "description": described("the VM's static external IP"), "labels": labels,
            "address_type": "EXTERNAL", "network_tier": "PREMIUM",
        }, (), "external, premium tier"))
    else:
        found += _cloud_nat(settings)
    found += _firewalls(settings)
    found.append(_instance(settings))
    return found


def attach_external_ip(body: dict[str, Any], address: str) -> dict[str, Any]:
    """The instance body with its reserved external IP, known only once that address exists."""
    interface = {**body["network_interfaces"][0]}
    if interface.get("access_configs"):
        interface["access_configs"] = [{**interface["access_configs"][0], "nat_i_p": address}]
    return {**body, "network_interfaces": [interface]}


def _links(settings: GcpSettings) -> tuple[str, str]:
    """The gateway network's and subnet's resource paths."""
    n = names(settings)
    return (f"projects/{settings.project}/global/networks/{n['network']}",
            f"projects/{settings.project}/regions/{settings.region}/subnetworks/{n['subnet']}")


def _labels(settings: GcpSettings) -> dict[str, str]:
    return {OWNER_LABEL: OWNER_VALUE, DEPLOYMENT_LABEL: settings.deployment}


def _described(settings: GcpSettings, what: str) -> str:
    return f"{owner_mark(settings.deployment)} {what}"


def _cloud_nat(settings: GcpSettings) -> list[Resource]:
    """The router whose NAT is the VM's way out; with ``nat_ip: static`` through an address of its own."""
    n, (network, _) = names(settings), _links(settings)
    nat: dict[str, Any] = {"name": f"{settings.deployment}-nat", "nat_ip_allocate_option": "AUTO_ONLY",
                           "source_subnetwork_ip_ranges_to_nat": "ALL_SUBNETWORKS_ALL_IP_RANGES", "nat_ips": []}
    found, needs, summary = [], [n["network"]], "Cloud NAT, automatic IPs (may change), all subnets"
    if settings.nat_ip == "static":
        found.append(Resource(ADDRESSES, n["nat_ip"], {
            "name": n["nat_ip"], "description": _described(settings, "Cloud NAT's static egress IP"),
            "labels": _labels(settings), "address_type": "EXTERNAL", "network_tier": "PREMIUM",
        }, (), "external, premium tier, Cloud NAT's egress IP"))
        nat.update(nat_ip_allocate_option="MANUAL_ONLY",
                   nat_ips=[f"projects/{settings.project}/regions/{settings.region}/addresses/{n['nat_ip']}"])
        needs.append(n["nat_ip"])
        summary = f"Cloud NAT, static egress IP {n['nat_ip']}, all subnets"
    found.append(Resource(ROUTERS, n["router"], {
        "name": n["router"], "description": _described(settings, "Cloud NAT for outbound traffic"),
        "network": network, "nats": [nat],
    }, tuple(needs), summary))
    return found


def _firewalls(settings: GcpSettings) -> list[Resource]:
    n, (network, _) = names(settings), _links(settings)
    ports = [str(port) for port in settings.api_ports]
    ssh_sources = ([IAP_RANGE] if settings.ssh_via == "iap" else []) + list(settings.ssh_admin_ranges)

    def rule(name: str, what: str, tcp: list[str], sources: list[str]) -> Resource:
        return Resource(FIREWALLS, name, {
            "name": name, "description": _described(settings, what), "network": network, "direction": "INGRESS",
            "priority": 1000, "disabled": False, "log_config": {"enable": False},
            "allowed": [{"I_p_protocol": "tcp", "ports": tcp}], "denied": [],
            "source_ranges": sources, "source_tags": [], "source_service_accounts": [],
            "target_tags": [n["tag"]], "target_service_accounts": [],
        }, (n["network"],), f"tcp:{','.join(tcp)} from {', '.join(sources)} to tag {n['tag']}")

    return [rule(n["api_rule"], "gateway API from Cloud Run only", ports, list(settings.api_source_ranges)),
            rule(n["ssh_rule"], "SSH from IAP and admin ranges only", ["22"], ssh_sources)]


def _instance(settings: GcpSettings) -> Resource:
    n, (network, subnet) = names(settings), _links(settings)
    interface: dict[str, Any] = {"network": network, "subnetwork": subnet, "network_i_p": settings.internal_ip}
    needs = [n["internal_ip"]]
    if settings.public_ip:
        interface["access_configs"] = [{"name": "external-nat", "type_": "ONE_TO_ONE_NAT",
                                        "network_tier": "PREMIUM", "nat_i_p": ""}]
        needs.append(n["external_ip"])
    else:  # Cloud NAT first: only then may a running VM lose its external IP and keep its way out
        needs.append(n["router"])
    body: dict[str, Any] = {
        "name": n["vm"], "description": _described(settings, "IB Gateway host"), "labels": _labels(settings),
        "machine_type": f"projects/{settings.project}/zones/{settings.zone}/machineTypes/{settings.machine_type}",
        "tags": {"items": [n["tag"]]},
        "metadata": {"items": [{"key": key, "value": value} for key, value in LOGIN_METADATA.items()]},
        "network_interfaces": [interface],
        "disks": [{"boot": True, "auto_delete": True, "initialize_params": {
            "source_image": settings.image, "disk_size_gb": settings.disk_size_gb, "disk_type":
            f"projects/{settings.project}/zones/{settings.zone}/diskTypes/pd-balanced"}}],
        "shielded_instance_config": {"enable_secure_boot": True, "enable_vtpm": True,
                                     "enable_integrity_monitoring": True},
        "scheduling": dict(SCHEDULING), "deletion_protection": True,
        "service_accounts": ([{"email": settings.service_account, "scopes": VM_SCOPES}]
                             if settings.service_account else []),
    }
    account = settings.service_account or "no service account"
    summary = (f"{settings.machine_type}, {settings.disk_size_gb} GB {settings.image.rsplit('/', 1)[-1]}, "
               f"shielded, OS Login, live-migrated, deletion protection, {settings.zone}, "
               f"internal {settings.internal_ip}, "
               f"{'static external IP' if settings.public_ip else 'no external IP'}, {account}")
    return Resource(INSTANCES, n["vm"], body, (n["subnet"], *needs), summary)
