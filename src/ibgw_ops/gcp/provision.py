"""Plan, apply and destroy one deployment's resources.

``plan`` only reads. ``apply`` converges every resource over the dependency graph (network -> subnets ->
addresses / firewalls / router -> instance), independent ones concurrently; a failure leaves the rest of the
graph converged, so a rerun picks up where it stopped. ``destroy`` deletes what carries this deployment's mark,
newest layer first, and treats "already gone" as done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
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
from ibgw_ops.gcp.reconcile import CREATE, UPDATE, Step, compare, converge
from ibgw_ops.gcp.settings import GcpSettings

# Deletion order: what uses a resource goes before it.
DESTROY_LAYERS = ((INSTANCES,), (ADDRESSES, FIREWALLS, ROUTERS), (SUBNETWORKS,), (NETWORKS,))


@dataclass(frozen=True)
class Found:
    """A resource of this deployment found in the cloud."""

    kind: str
    name: str


def plan(api: ComputeApi, settings: GcpSettings) -> list[Step]:
    """What apply would do to each resource, from reads only (done concurrently)."""
    desired = {resource.name: resource for resource in resources(settings)}

    def read(name: str) -> Step:
        resource = _with_addresses(api, settings, desired[name])
        return compare(resource, api.get(resource.kind, resource.name), settings.deployment)

    steps, failures = graph.run(dict.fromkeys(desired, ()), read)
    _raise_failures(failures)
    return [steps[name] for name in desired]


def apply(api: ComputeApi, settings: GcpSettings, report: Callable[[Step], None], max_workers: int = 8,
          ) -> list[Step]:
    """Converge every resource, each once what it needs exists; ``report`` hears each step as it completes.

    Reports come one at a time, so their lines never interleave. ``max_workers=1`` converges one resource at a
    time (the benchmarks' baseline).
    """
    desired = {resource.name: resource for resource in resources(settings)}
    reporting = threading.Lock()

    def converge_one(name: str) -> Step:
        step = converge(api, _with_addresses(api, settings, desired[name]), settings.deployment)
        with reporting:
            report(step)
        return step

    steps, failures = graph.run({name: resource.needs for name, resource in desired.items()}, converge_one,
                                max_workers)
    _raise_failures(failures)
    return [steps[name] for name in desired]


def external_ip(api: ComputeApi, settings: GcpSettings) -> str:
    """The VM's reserved external IP ("" without one)."""
    if not settings.public_ip:
        return ""
    address = api.get(ADDRESSES, names(settings)["external_ip"])
    return str(address.get("address", "")) if address else ""


def owned(api: ComputeApi, settings: GcpSettings) -> list[Found]:
    """Every resource carrying this deployment's mark, in deletion order."""
    kinds = [kind for layer in DESTROY_LAYERS for kind in layer]
    listed, failures = graph.run(dict.fromkeys(kinds, ()), api.list)
    _raise_failures(failures)
    return [Found(kind, str(item["name"])) for kind in kinds for item in listed[kind]
            if owned_by(item, settings.deployment)]


def destroy(api: ComputeApi, found: list[Found], report: Callable[[Found, bool], None]) -> None:
    """Delete ``found`` layer by layer (each layer concurrently); ``report(found, deleted)`` per resource."""
    reporting = threading.Lock()
    for layer in DESTROY_LAYERS:
        batch = {f"{item.kind}/{item.name}": item for item in found if item.kind in layer}

        def delete(key: str, batch: dict[str, Found] = batch) -> None:
            item = batch[key]
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
    """One plan line (or, ``done``, progress line): action, kind, name, key settings, and drift."""
    resource = step.resource
    action = {CREATE: "created", UPDATE: "updated"}.get(step.action, step.action) if done else step.action
    line = f"{action:<7} {SINGULAR[resource.kind]:<11} {resource.name:<20} {resource.summary}"
    for drift in step.drift:
        verdict = "patch" if drift.patchable else "cannot change in place, left as is"
        line += f"\n          {drift.field}: {_short(drift.have)} -> {_short(drift.want)} ({verdict})"
    return line


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 100 else text[:97] + "..."
