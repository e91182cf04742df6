"""Plan, apply and destroy one deployment's resources.

``plan`` only reads. ``apply`` converges every resource over the dependency graph (network -> subnets ->
addresses / firewalls / router -> instance), independent ones concurrently; a failure leaves the rest of the
graph converged, so a rerun picks up where it stopped. ``destroy`` deletes what carries this deployment's mark,
newest layer first, and treats "already gone" as done; it lifts the deletion protection of the VM it deletes, and
of no other. ``foreign_rules`` finds what provision does not own but
must not ignore: other ingress rules on the deployment's network that admit the gateway's API ports or SSH.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ibgw_ops.errors import OpsError
from ibgw_ops.gcp import graph
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
    attach_external_ip,
    names,
    owned_by,
    resources,
)
from ibgw_ops.gcp.reconcile import CREATE, UPDATE, Step, compare, converge, link_path, set_deletion_protection
from ibgw_ops.gcp.settings import GcpSettings

# Deletion order: what uses a resource goes before it (the VM and Cloud NAT hold addresses).
DESTROY_LAYERS = ((INSTANCES,), (FIREWALLS, ROUTERS), (ADDRESSES,), (SUBNETWORKS,), (NETWORKS,))
SSH_PORT = 22


@dataclass(frozen=True)
class Found:
    """A resource of this deployment found in the cloud; ``protected``: a VM with deletion protection."""

    kind: str
    name: str
    protected: bool = False


@dataclass(frozen=True)
class ForeignRule:
    """A firewall rule this deployment does not manage that admits traffic to the gateway's API ports or SSH."""

    name: str
    ports: tuple[int, ...]
    targets: str
    sources: str


def plan(api: ComputeApi, settings: GcpSettings) -> list[Step]:
    """What apply would do to each resource, from reads only (done concurrently), compared in apply's order."""
    desired = {resource.name: _with_addresses(api, settings, resource) for resource in resources(settings)}
    current, failures = graph.run(dict.fromkeys(desired, ()),
                                  lambda name: api.get(desired[name].kind, name))
    _raise_failures(failures)
    steps: dict[str, Step] = {}
    for name, resource in desired.items():
        steps[name] = compare(resource, current[name], settings.deployment, nat_ready=_nat_ready(settings, steps))
    return list(steps.values())


def apply(api: ComputeApi, settings: GcpSettings, report: Callable[[Step], None], max_workers: int = 8,
          ) -> list[Step]:
    """Converge every resource, each once what it needs exists; ``report`` hears each step as it completes.

    Reports come one at a time, so their lines never interleave. ``max_workers=1`` converges one resource at a
    time (the benchmarks' baseline).
    """
    desired = {resource.name: resource for resource in resources(settings)}
    reporting = threading.Lock()
    done: dict[str, Step] = {}

    def converge_one(name: str) -> Step:
        with reporting:
            nat_ready = _nat_ready(settings, done)
        step = converge(api, _with_addresses(api, settings, desired[name]), settings.deployment, nat_ready=nat_ready)
        with reporting:
            done[name] = step
            report(step)
        return step

    steps, failures = graph.run({name: resource.needs for name, resource in desired.items()}, converge_one,
                                max_workers)
    _raise_failures(failures)
    return [steps[name] for name in desired]


def _nat_ready(settings: GcpSettings, steps: Mapping[str, Step]) -> bool:
    """Whether Cloud NAT existed before this run (its router, a need of the VM's, was not created by it)."""
    step = steps.get(names(settings)["router"])
    return step is not None and step.action != CREATE


def external_ip(api: ComputeApi, settings: GcpSettings) -> str:
    """The VM's reserved external IP ("" without one)."""
    return _address(api, names(settings)["external_ip"]) if settings.public_ip else ""


def egress_ip(api: ComputeApi, settings: GcpSettings, external: str) -> str:
    """The address the VM's outbound traffic leaves from: its external IP, Cloud NAT's static one, or "" (auto)."""
    if settings.public_ip:
        return external
    return _address(api, names(settings)["nat_ip"]) if settings.nat_ip == "static" else ""


def _address(api: ComputeApi, name: str) -> str:
    address = api.get(ADDRESSES, name)
    return str(address.get("address", "")) if address else ""


def foreign_rules(api: ComputeApi, settings: GcpSettings) -> list[ForeignRule]:
    """Other enabled ingress rules on the deployment's network that admit the gateway's API ports or SSH to it.

    "To it": to its tag, its service account or every instance. Firewall rules add up: such a rule opens the
    unauthenticated API however tight the deployment's own rule is.
    """
    n = names(settings)
    network, ours = f"projects/{settings.project}/global/networks/{n['network']}", {n["api_rule"], n["ssh_rule"]}
    watched = {*settings.api_ports, SSH_PORT}
    found = []
    for rule in api.list(FIREWALLS):
        if (rule["name"] in ours or link_path(str(rule.get("network", ""))) != network or rule.get("disabled")
                or rule.get("direction", "INGRESS") != "INGRESS"):
            continue
        targets = _targets(rule, n["tag"], settings.service_account)
        ports = _admitted(rule, watched)
        if targets and ports:
            sources = [*rule.get("source_ranges", []), *(f"tag {tag}" for tag in rule.get("source_tags", [])),
                       *(f"service account {sa}" for sa in rule.get("source_service_accounts", []))]
            found.append(ForeignRule(str(rule["name"]), ports, targets, ", ".join(sources) or "nowhere"))
    return found


def _targets(rule: dict[str, Any], tag: str, account: str) -> str:
    """Whom of the gateway's a rule applies to ("" if not the gateway VM)."""
    tags, accounts = rule.get("target_tags") or [], rule.get("target_service_accounts") or []
    if not tags and not accounts:
        return "every instance"
    if tag in tags:
        return f"tag {tag}"
    return f"service account {account}" if account and account in accounts else ""


def _admitted(rule: dict[str, Any], watched: set[int]) -> tuple[int, ...]:
    """The watched TCP ports a rule's ``allowed`` entries admit (no ports listed: every port)."""
    admitted: set[int] = set()
    for allowed in rule.get("allowed") or []:
        if str(allowed.get("I_p_protocol", "")).lower() not in ("tcp", "all", "6"):
            continue
        spans = [text.split("-", 1) for text in allowed.get("ports") or []]
        admitted |= {port for port in watched
                     if not spans or any(int(span[0]) <= port <= int(span[-1]) for span in spans)}
    return tuple(sorted(admitted))


def owned(api: ComputeApi, settings: GcpSettings) -> list[Found]:
    """Every resource carrying this deployment's mark, in deletion order."""
    kinds = [kind for layer in DESTROY_LAYERS for kind in layer]
    listed, failures = graph.run(dict.fromkeys(kinds, ()), api.list)
    _raise_failures(failures)
    return [Found(kind, str(item["name"]), bool(item.get("deletion_protection"))) for kind in kinds
            for item in listed[kind] if owned_by(item, settings.deployment)]


def destroy(api: ComputeApi, found: list[Found], report: Callable[[Found, bool], None]) -> None:
    """Delete ``found`` layer by layer (each layer concurrently); ``report(found, deleted)`` per resource."""
    reporting = threading.Lock()
    for layer in DESTROY_LAYERS:
        batch = {f"{item.kind}/{item.name}": item for item in found if item.kind in layer}

        def delete(key: str, batch: dict[str, Found] = batch) -> None:
            item = batch[key]
            if item.protected:
                set_deletion_protection(api, item.name, protected=False)
            deleted = api.delete(item.kind, item.name)
            with reporting:
                report(item, deleted)

        _, failures = graph.run(dict.fromkeys(batch, ()), delete)
        _raise_failures(failures)


def _with_addresses(api: ComputeApi, settings: GcpSettings, resource: Resource) -> Resource:
    """The instance needs its external IP's value, which exists only once the address is reserved."""
    if resource.kind != INSTANCES or not settings.public_ip:
        return resource
    return replace(resource, body=attach_external_ip(resource.body, external_ip(api, settings)))


def _raise_failures(failures: dict[str, BaseException]) -> None:
    """One error listing every failed resource and what was not attempted because of it."""
    causes: list[OpsError] = []
    for error in failures.values():
        if isinstance(error, OpsError):
            causes.append(error)
        elif not isinstance(error, graph.Skipped):
            raise error
    if not causes:
        return
    skipped = sorted(name for name, error in failures.items() if isinstance(error, graph.Skipped))
    lines = [str(error) for error in causes] + ([f"not attempted: {', '.join(skipped)}"] if skipped else [])
    raise OpsError("\n  ".join(lines), causes[0].code)


def describe(step: Step, *, done: bool = False) -> str:
    """One plan (or, ``done``, progress) line: action, kind, name, settings; each drift as old -> new (fix)."""
    resource = step.resource
    action = {CREATE: "created", UPDATE: "updated"}.get(step.action, step.action) if done else step.action
    line = f"{action:<7} {SINGULAR[resource.kind]:<11} {resource.name:<20} {resource.summary}"
    for drift in step.drift:
        verdict = f"{drift.fix}: {drift.note}" if drift.fix and drift.note else drift.fix or f"{drift.note}, left as is"
        line += f"\n          {drift.field}: {_short(drift.have)} -> {_short(drift.want)} ({verdict})"
        if drift.command:
            line += f"\n            to apply it: {drift.command}"
    return line


def describe_foreign(rule: ForeignRule) -> str:
    """One attention line: the rule, what it admits, to whom and from where."""
    ports = ",".join(map(str, rule.ports))
    return (f"{'foreign':<7} {'firewall':<11} {rule.name:<20} admits tcp:{ports} to {rule.targets} "
            f"from {rule.sources} (not managed by this deployment)")


def _short(value: Any) -> str:
    """A value as the plan shows it: mappings in key order (the API's order varies), long ones cut."""
    text = "(none)" if value is None else str(_in_key_order(value))
    return text if len(text) <= 200 else text[:197] + "..."


def _in_key_order(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _in_key_order(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_in_key_order(item) for item in value]
    return value
