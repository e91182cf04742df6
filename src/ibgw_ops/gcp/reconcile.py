"""Compare one resource with the cloud and converge it: create what is missing, patch what drifted.

Only the fields ibgw-ops manages are compared. Drift in a field the API cannot change in place (a subnet's range,
the VM's machine type) is reported and left alone: fixing it means a stop or a recreate, which would end a live
gateway session, so that stays the operator's decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ibgw_ops.errors import OpsError
from ibgw_ops.gcp.compute import ComputeApi
from ibgw_ops.gcp.desired import (
    ADDRESSES,
    FIREWALLS,
    INSTANCES,
    NETWORKS,
    ROUTERS,
    SINGULAR,
    SUBNETWORKS,
    Resource,
    owned_by,
)

CREATE, UPDATE, OK = "create", "update", "ok"

# Per collection: fields patched in place, and fields only a recreate could change.
PATCHABLE: dict[str, tuple[str, ...]] = {
    NETWORKS: ("routing_config",),
    SUBNETWORKS: ("private_ip_google_access",),
    ADDRESSES: ("labels",),
    FIREWALLS: ("direction", "priority", "allowed", "source_ranges", "target_tags"),
    ROUTERS: ("nats",),
    INSTANCES: ("labels", "tags", "metadata"),
}
FIXED: dict[str, tuple[str, ...]] = {
    NETWORKS: ("auto_create_subnetworks",),
    SUBNETWORKS: ("network", "ip_cidr_range"),
    ADDRESSES: ("address_type", "purpose", "subnetwork", "address", "network_tier"),
    FIREWALLS: ("network",),
    ROUTERS: ("network",),
    INSTANCES: ("machine_type", "network_interfaces", "service_accounts", "shielded_instance_config"),
}


@dataclass(frozen=True)
class Drift:
    """One managed field whose cloud value differs from the settings."""

    field: str
    want: Any
    have: Any
    patchable: bool


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


def compare(resource: Resource, current: dict[str, Any] | None, deployment: str) -> Step:
    """The step that would bring ``current`` (None: missing) to the resource's managed fields."""
    if current is None:
        return Step(resource, CREATE)
    if not owned_by(current, deployment):
        raise OpsError(f"{SINGULAR[resource.kind]} {resource.name} exists but is not managed by ibgw-ops deployment "
                       f"'{deployment}' (no owner label or description); rename the deployment or remove it")
    drift = [Drift(name, resource.body[name], current.get(name), patchable)
             for names, patchable in ((PATCHABLE[resource.kind], True), (FIXED[resource.kind], False))
             for name in names
             if name in resource.body and not matches(resource.body[name], current.get(name), name)]
    return Step(resource, UPDATE if any(d.patchable for d in drift) else OK, drift)


def converge(api: ComputeApi, resource: Resource, deployment: str) -> Step:
    """Bring one resource to its settings: get, insert (a conflict means someone created it: get again), patch."""
    current = api.get(resource.kind, resource.name)
    step = compare(resource, current, deployment)
    if step.action == CREATE and not api.insert(resource.kind, resource.body):
        current = api.get(resource.kind, resource.name)
        if current is None:
            raise OpsError(f"{SINGULAR[resource.kind]} {resource.name}: the API reported it exists, yet it cannot "
                           "be read; run provision again")
        step = compare(resource, current, deployment)
    if step.action == UPDATE and current is not None:
        _patch(api, resource, current)
    return step


def matches(want: Any, have: Any, name: str = "") -> bool:
    """Whether the cloud value holds the wanted one: links by path, mappings by the wanted keys, tags exactly."""
    if _empty(want) and _empty(have):
        return True
    if isinstance(want, dict):
        if name == "metadata":
            return _metadata_holds(want, have)
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


def _metadata_holds(want: dict[str, Any], have: Any) -> bool:
    present = {item.get("key"): item.get("value") for item in (have or {}).get("items", [])}
    return all(present.get(item["key"]) == item["value"] for item in want["items"])


def _patch(api: ComputeApi, resource: Resource, current: dict[str, Any]) -> None:
    body, kind, name = resource.body, resource.kind, resource.name
    if kind in (NETWORKS, FIREWALLS, ROUTERS):
        singular = SINGULAR[kind]
        patch = {key: body[key] for key in ("name", *PATCHABLE[kind]) if key in body}
        api.mutate(kind, name, "patch", **{singular: name, f"{singular}_resource": patch})
    elif kind == SUBNETWORKS:
        api.mutate(kind, name, "set_private_ip_google_access", subnetwork=name,
                   subnetworks_set_private_ip_google_access_request_resource={
                       "private_ip_google_access": body["private_ip_google_access"]})
    elif kind == ADDRESSES:
        api.mutate(kind, name, "set_labels", resource=name, region_set_labels_request_resource={
            "labels": {**current.get("labels", {}), **body["labels"]},
            "label_fingerprint": current.get("label_fingerprint", "")})
    else:
        _patch_instance(api, resource, current)


def _patch_instance(api: ComputeApi, resource: Resource, current: dict[str, Any]) -> None:
    body, name = resource.body, resource.name
    if not matches(body["labels"], current.get("labels")):
        api.mutate(INSTANCES, name, "set_labels", instance=name, instances_set_labels_request_resource={
            "labels": {**current.get("labels", {}), **body["labels"]},
            "label_fingerprint": current.get("label_fingerprint", "")})
    if not matches(body["tags"], current.get("tags"), "tags"):
        api.mutate(INSTANCES, name, "set_tags", instance=name, tags_resource={
            "items": body["tags"]["items"], "fingerprint": current.get("tags", {}).get("fingerprint", "")})
    if not matches(body["metadata"], current.get("metadata"), "metadata"):
        ours = {item["key"] for item in body["metadata"]["items"]}
        kept = [item for item in current.get("metadata", {}).get("items", []) if item.get("key") not in ours]
        api.mutate(INSTANCES, name, "set_metadata", instance=name, metadata_resource={
            "items": kept + body["metadata"]["items"],
            "fingerprint": current.get("metadata", {}).get("fingerprint", "")})
