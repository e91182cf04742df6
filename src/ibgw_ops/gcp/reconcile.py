"""Compare one resource with the cloud and converge it: create what is missing, fix what drifted.

Every managed field is compared, and each knows how the API fixes it. A firewall rule is owned whole: a PATCH
cannot clear a list (the client never sends an empty one) nor drop a key of a mapping, so a rule that gained
source tags, service accounts or logging metadata is replaced with an update, and one whose direction or action
changed (the API keeps those) is recreated. The VM's access configs, tags, service account, login metadata,
scheduling and deletion protection have methods of their own.

provision never interrupts a running live gateway: a change that would drop the VM's network or restart it is
reported with the command that applies it, and left to the operator. That covers a new service account or
provisioning model (the VM must be stopped), swapping or removing its external IP (its connections drop, and
without Cloud NAT it is cut off), and what the API cannot change in place (a subnet's range, the VM's machine
type, interface or shielded settings).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ibgw_ops.errors import OpsError
from ibgw_ops.gcp.compute import ComputeApi
from ibgw_ops.gcp.desired import (
    ADDRESSES,
    FIREWALLS,
    INSTANCES,
    LOGIN_METADATA,
    NETWORKS,
    ROUTERS,
    SCHEDULING,
    SINGULAR,
    SUBNETWORKS,
    Resource,
    owned_by,
)

CREATE, UPDATE, OK = "create", "update", "ok"
# How a drifted field is fixed: a firewall PATCH, its replacement (PUT), delete and insert, or a custom method.
PATCH, REPLACE, RECREATE = "patch", "update", "recreate"
ACCESS_CONFIG = "deleteAccessConfig/addAccessConfig"
SET_SERVICE_ACCOUNT = "setServiceAccount"
SET_SCHEDULING = "setScheduling"
SET_DELETION_PROTECTION = "setDeletionProtection"
CANNOT = "cannot change in place"
STOPPED_ONLY = "can change only while the VM is stopped"
DROPS_CONNECTIONS = "would drop the running VM's connections"
NO_WAY_OUT = "would cut the running VM off the internet: Cloud NAT did not exist before this run"
# Scheduling fields GCP changes only on a stopped VM (the rest setScheduling changes while it runs).
_STOPPED_SCHEDULING = ("provisioning_model", "preemptible")
# Firewall fixes, weakest first: the step uses the strongest its drift needs.
_FIREWALL_FIXES = (PATCH, REPLACE, RECREATE)


@dataclass(frozen=True)
class Field:
    """One managed field: its name in the plan, how drift is fixed ("" never), and its compared value."""

    name: str
    fix: str
    read: Callable[[dict[str, Any]], Any] | None = None

    def value(self, resource: dict[str, Any]) -> Any:
        """The compared value of a desired body or a resource read from the API (same field names)."""
        return self.read(resource) if self.read else resource.get(self.name)


@dataclass(frozen=True)
class Drift:
    """One managed field whose cloud value differs from the settings, and how provision fixes it ("": it does not)."""

    field: str
    want: Any
    have: Any
    fix: str
    note: str = ""
    command: str = ""  # what applies drift provision leaves, when the operator accepts what it costs

    @property
    def patchable(self) -> bool:
        """Whether provision fixes it."""
        return bool(self.fix)


@dataclass
class Step:
    """What a resource needs (create, update or ok) and, for an update, which fields differ."""

    resource: Resource
    action: str
    drift: list[Drift] = field(default_factory=list)

    @property
    def unfixable(self) -> list[Drift]:
        """Drift that provision reports and leaves alone."""
        return [d for d in self.drift if not d.patchable]


def _nic(resource: dict[str, Any]) -> dict[str, Any]:
    interfaces = resource.get("network_interfaces") or [{}]
    return dict(interfaces[0])


def _nat_ips(resource: dict[str, Any]) -> list[str]:
    return [str(config.get("nat_i_p", "")) for config in _nic(resource).get("access_configs") or []]


def _interface(resource: dict[str, Any]) -> dict[str, Any]:
    nic = _nic(resource)
    return {key: link_path(str(nic.get(key, ""))) for key in ("network", "subnetwork", "network_i_p")}


def _sorted_tags(resource: dict[str, Any]) -> list[str]:
    return sorted((resource.get("tags") or {}).get("items") or [])


def _accounts(resource: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"email": account.get("email", ""), "scopes": sorted(account.get("scopes") or [])}
            for account in resource.get("service_accounts") or []]


def _scheduling(resource: dict[str, Any]) -> dict[str, Any]:
    scheduling = resource.get("scheduling") or {}
    return {key: scheduling.get(key) for key in SCHEDULING}


def _metadata(key: str) -> Callable[[dict[str, Any]], Any]:
    def read(resource: dict[str, Any]) -> Any:
        items = (resource.get("metadata") or {}).get("items") or []
        return next((item.get("value") for item in items if item.get("key") == key), None)
    return read


FIELDS: dict[str, tuple[Field, ...]] = {
    NETWORKS: (Field("routing_config", PATCH), Field("auto_create_subnetworks", "")),
    SUBNETWORKS: (Field("private_ip_google_access", "setPrivateIpGoogleAccess"), Field("network", ""),
                  Field("ip_cidr_range", "")),
    ADDRESSES: (Field("labels", "setLabels"), *(Field(name, "") for name in (
        "address_type", "purpose", "subnetwork", "address", "network_tier"))),
    FIREWALLS: (*(Field(name, PATCH) for name in (
        "source_ranges", "source_tags", "source_service_accounts", "target_tags", "target_service_accounts",
        "allowed", "priority", "disabled", "log_config")),
        *(Field(name, RECREATE) for name in ("denied", "direction", "network"))),
    ROUTERS: (Field("nats", PATCH), Field("network", "")),
    INSTANCES: (Field("labels", "setLabels"), Field("tags", "setTags", _sorted_tags),
                *(Field(f"metadata.{key}", "setMetadata", _metadata(key)) for key in LOGIN_METADATA),
                Field("access_configs", ACCESS_CONFIG, _nat_ips),
                Field("service_accounts", SET_SERVICE_ACCOUNT, _accounts),
                Field("scheduling", SET_SCHEDULING, _scheduling),
                Field("deletion_protection", SET_DELETION_PROTECTION),
                Field("machine_type", ""), Field("network_interfaces", "", _interface),
                Field("shielded_instance_config", "")),
}


def compare(resource: Resource, current: dict[str, Any] | None, deployment: str, *, nat_ready: bool = False,
            ) -> Step:
    """The step that would bring ``current`` (None: missing) to the resource's managed fields.

    ``nat_ready``: Cloud NAT existed before this run, so a running VM may lose an external IP it should not have.
    """
    if current is None:
        return Step(resource, CREATE)
    if not owned_by(current, deployment):
        raise OpsError(f"{SINGULAR[resource.kind]} {resource.name} exists but is not managed by ibgw-ops deployment "
                       f"'{deployment}' (no owner label or description); rename the deployment or remove it")
    drift = [_drift(resource, spec, current, nat_ready)
             for spec in FIELDS[resource.kind]
             if (spec.read or spec.name in resource.body)
             and not matches(spec.value(resource.body), spec.value(current), spec.name)]
    return Step(resource, UPDATE if any(d.patchable for d in drift) else OK, drift)


def _drift(resource: Resource, spec: Field, current: dict[str, Any], nat_ready: bool) -> Drift:
    """The drift of one field, with the fix it needs now (none when it would interrupt the running VM)."""
    kind, want, have = resource.kind, spec.value(resource.body), spec.value(current)
    left = _interrupting(resource, spec, current, nat_ready)
    if left:
        command = _command(spec.name, resource, current) if kind == INSTANCES else ""
        return Drift(spec.name, want, have, "", left, command)
    if kind == FIREWALLS and spec.fix == PATCH and want == [] and have:
        return Drift(spec.name, want, have, REPLACE, "a patch cannot clear a list")
    if kind == FIREWALLS and spec.fix == PATCH and isinstance(want, dict) and set(have or {}) - set(want):
        return Drift(spec.name, want, have, REPLACE, "a patch cannot remove a key")
    return Drift(spec.name, want, have, spec.fix)


def _interrupting(resource: Resource, spec: Field, current: dict[str, Any], nat_ready: bool) -> str:
    """Why fixing this drift now would interrupt the VM ("" when it would not, or it is stopped)."""
    if not spec.fix:
        return CANNOT
    if current.get("status") == "TERMINATED" or resource.kind != INSTANCES:
        return ""
    want, have = spec.value(resource.body), spec.value(current)
    if spec.fix == SET_SERVICE_ACCOUNT or (spec.fix == SET_SCHEDULING and any(
            not matches(want.get(key), have.get(key)) for key in _STOPPED_SCHEDULING)):
        return STOPPED_ONLY
    if spec.fix == ACCESS_CONFIG and have:
        if want:
            return DROPS_CONNECTIONS
        return "" if nat_ready else NO_WAY_OUT
    return ""


def _command(field_name: str, resource: Resource, current: dict[str, Any]) -> str:
    """The gcloud commands that apply drift provision leaves (a stop first where the API needs one)."""
    _, project, _, zone = link_path(str(current["zone"])).split("/")
    vm = f"gcloud compute instances {{}} {resource.name} --project={project} --zone={zone}"
    body, nic = resource.body, _nic(resource.body)
    if field_name == "access_configs":
        current_nic = _nic(current)
        steps = [f"{vm.format('delete-access-config')} --network-interface={current_nic.get('name', 'nic0')} "
                 f"--access-config-name='{config.get('name', '')}'" for config in current_nic.get("access_configs")
                 or []]
        steps += [f"{vm.format('add-access-config')} --network-interface={current_nic.get('name', 'nic0')} "
                  f"--access-config-name={config['name']} --address={config['nat_i_p']} "
                  f"--network-tier={config['network_tier']}" for config in nic.get("access_configs") or []]
        return " && ".join(steps)
    if field_name == "machine_type":
        change = f"{vm.format('set-machine-type')} --machine-type={body['machine_type'].rsplit('/', 1)[-1]}"
    elif field_name == "network_interfaces":
        change = (f"{vm.format('network-interfaces update')} --network-interface={_nic(current).get('name', 'nic0')}"
                  f" --network={nic['network']} --subnetwork={nic['subnetwork']} "
                  f"--private-network-ip={nic['network_i_p']}")
    elif field_name == "shielded_instance_config":
        change = (f"{vm.format('update')} --shielded-secure-boot --shielded-vtpm "
                  "--shielded-integrity-monitoring")
    else:  # what provision sets itself once the VM is stopped
        change = "ibgw-ops -i <inventory> provision --skip-deploy"
    return f"{vm.format('stop')} && {change} && {vm.format('start')}"


def converge(api: ComputeApi, resource: Resource, deployment: str, *, nat_ready: bool = False) -> Step:
    """Bring one resource to its settings: get, insert (a conflict means someone created it: get again), fix."""
    current = api.get(resource.kind, resource.name)
    step = compare(resource, current, deployment, nat_ready=nat_ready)
    if step.action == CREATE and not api.insert(resource.kind, resource.body):
        current = api.get(resource.kind, resource.name)
        if current is None:
            raise OpsError(f"{SINGULAR[resource.kind]} {resource.name}: the API reported it exists, yet it cannot "
                           "be read; run provision again")
        step = compare(resource, current, deployment, nat_ready=nat_ready)
    if step.action == UPDATE and current is not None:
        _fix(api, step, current)
    return step


def matches(want: Any, have: Any, name: str = "") -> bool:
    """Whether the cloud value holds the wanted one: links by path, mappings by the wanted keys, lists exactly."""
    if _empty(want) and _empty(have):
        return True
    if isinstance(want, dict):
        return isinstance(have, dict) and all(matches(v, have.get(k), k) for k, v in want.items())
    if isinstance(want, list):
        return (isinstance(have, list) and len(want) == len(have)
                and all(matches(w, h, name) for w, h in zip(want, have, strict=True)))
    if isinstance(want, str) and isinstance(have, str) and "/" in want:
        return link_path(want) == link_path(have)
    return bool(want == have)


def _empty(value: Any) -> bool:
    """Unset and empty are one state: the API leaves out false, zero and empty fields."""
    return value is None or value is False or value in ("", 0, [], {})


def link_path(link: str) -> str:
    """A resource link without its host and API version, so full URLs and partial paths compare equal."""
    return link.split("/compute/v1/", 1)[-1]


def _fix(api: ComputeApi, step: Step, current: dict[str, Any]) -> None:
    """Call what each fixable drift needs, once per method."""
    resource, fixes = step.resource, {d.fix for d in step.drift if d.patchable}
    body, kind, name = resource.body, resource.kind, resource.name
    if kind == FIREWALLS:
        _fix_firewall(api, resource, max(fixes, key=_FIREWALL_FIXES.index))
    elif kind in (NETWORKS, ROUTERS):
        singular, patched = SINGULAR[kind], [spec.name for spec in FIELDS[kind] if spec.fix == PATCH]
        api.mutate(kind, name, "patch", **{singular: name, f"{singular}_resource": {
            key: body[key] for key in ("name", *patched)}})
    elif kind == SUBNETWORKS:
        api.mutate(kind, name, "set_private_ip_google_access", subnetwork=name,
                   subnetworks_set_private_ip_google_access_request_resource={
                       "private_ip_google_access": body["private_ip_google_access"]})
    elif kind == ADDRESSES:
        api.mutate(kind, name, "set_labels", resource=name, region_set_labels_request_resource={
            "labels": {**current.get("labels", {}), **body["labels"]},
            "label_fingerprint": current.get("label_fingerprint", "")})
    else:
        _fix_instance(api, resource, current, fixes)


def _fix_firewall(api: ComputeApi, resource: Resource, fix: str) -> None:
    """The whole rule goes out each time: patched, replaced (to clear a list) or recreated (direction, action)."""
    if fix == RECREATE:
        api.delete(FIREWALLS, resource.name)
        api.insert(FIREWALLS, resource.body)
    else:
        api.mutate(FIREWALLS, resource.name, fix, firewall=resource.name, firewall_resource=resource.body)


def _fix_instance(api: ComputeApi, resource: Resource, current: dict[str, Any], fixes: set[str]) -> None:
    body, name = resource.body, resource.name
    if "setLabels" in fixes:
        api.mutate(INSTANCES, name, "set_labels", instance=name, instances_set_labels_request_resource={
            "labels": {**current.get("labels", {}), **body["labels"]},
            "label_fingerprint": current.get("label_fingerprint", "")})
    if "setTags" in fixes:
        api.mutate(INSTANCES, name, "set_tags", instance=name, tags_resource={
            "items": body["tags"]["items"], "fingerprint": current.get("tags", {}).get("fingerprint", "")})
    if "setMetadata" in fixes:
        kept = [item for item in current.get("metadata", {}).get("items", []) if item.get("key") not in LOGIN_METADATA]
        api.mutate(INSTANCES, name, "set_metadata", instance=name, metadata_resource={
            "items": kept + body["metadata"]["items"],
            "fingerprint": current.get("metadata", {}).get("fingerprint", "")})
    if ACCESS_CONFIG in fixes:
        _fix_access_configs(api, resource, current)
    if SET_SERVICE_ACCOUNT in fixes:
        accounts = body["service_accounts"]
        api.mutate(INSTANCES, name, "set_service_account", instance=name,
                   instances_set_service_account_request_resource=accounts[0] if accounts else {})
    if SET_SCHEDULING in fixes:  # setScheduling replaces the whole scheduling: what is not managed goes back as is
        api.mutate(INSTANCES, name, "set_scheduling", instance=name,
                   scheduling_resource={**current.get("scheduling", {}), **body["scheduling"]})
    if SET_DELETION_PROTECTION in fixes:
        set_deletion_protection(api, name, protected=body["deletion_protection"])


def set_deletion_protection(api: ComputeApi, name: str, *, protected: bool) -> None:
    """Turn the VM's deletion protection on or off (a protected VM refuses a DELETE)."""
    api.mutate(INSTANCES, name, "set_deletion_protection", resource=name, deletion_protection=protected)


def _fix_access_configs(api: ComputeApi, resource: Resource, current: dict[str, Any]) -> None:
    """Remove every access config the VM should not have, then put the reserved external address back."""
    nic, name = _nic(current), resource.name
    for config in nic.get("access_configs") or []:
        api.mutate(INSTANCES, name, "delete_access_config", instance=name, access_config=config["name"],
                   network_interface=nic["name"])
    for config in _nic(resource.body).get("access_configs") or []:
        api.mutate(INSTANCES, name, "add_access_config", instance=name, access_config_resource=config,
                   network_interface=nic["name"])
