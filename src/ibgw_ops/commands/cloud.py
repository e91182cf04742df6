"""``ibgw-ops provision | destroy``: the Google Cloud resources of a deployment, from ``<inventory>/gcp.yml``.

Settings are checked completely before the first API call. The Compute endpoint is the default one, or
``compute_endpoint`` in gcp.yml / ``$IBGW_OPS_COMPUTE_ENDPOINT`` (private endpoints, the tests' fake).
The cloud libraries are imported inside the verbs, so other verbs start without them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ibgw_ops import inventory, lifecycle
from ibgw_ops.commands.options import confirm, open_runner, runner_options
from ibgw_ops.errors import ExitCode
from ibgw_ops.gcp import host_inventory
from ibgw_ops.gcp.desired import SINGULAR
from ibgw_ops.gcp.settings import GcpSettings, load

if TYPE_CHECKING:
    from ibgw_ops.gcp.compute import ComputeApi


def register(verbs: Any) -> None:
    """Add the cloud verbs."""
    parser = verbs.add_parser("provision", help=provision.__doc__, description=provision.__doc__,
                              parents=[runner_options()])
    parser.add_argument("--plan", action="store_true",
                        help="print what would be created, changed or left as is; change nothing")
    parser.add_argument("--skip-deploy", action="store_true",
                        help="create the cloud resources and the inventory, but do not configure the VM")
    parser.set_defaults(handler=provision)

    parser = verbs.add_parser("destroy", help=destroy.__doc__, description=destroy.__doc__)
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.set_defaults(handler=destroy)


def provision(args: argparse.Namespace) -> int:
    """Create or reconcile the network, addresses, firewall rules and VM; write the inventory; deploy the VM."""
    directory, settings, api = _open(args)
    from ibgw_ops.gcp import provision as cloud  # noqa: PLC0415 - cloud libraries load only for cloud verbs

    if args.plan:
        print(f"plan for deployment '{settings.deployment}' in {settings.project}/{settings.zone}:")
        for step in cloud.plan(api, settings):
            print(cloud.describe(step))
        return int(ExitCode.OK)

    steps = cloud.apply(api, settings, lambda step: print(cloud.describe(step, done=True), flush=True))
    for step in steps:
        for drift in step.unfixable:
            print(f"ibgw-ops: warning: {SINGULAR[step.resource.kind]} {step.resource.name}: {drift.field} differs "
                  "and cannot change in place; recreate it (destroy, provision) when a stop is acceptable",
                  file=sys.stderr)
    if host_inventory.write(directory, settings, cloud.external_ip(api, settings)):
        print(f"inventory written: {directory / 'hosts.yml'}")
    if args.skip_deploy:
        return int(ExitCode.OK)
    with open_runner(args, directory) as runner:
        lifecycle.wait_for_hosts(runner)
        lifecycle.deploy(runner)
    print(f"deployed: start the gateways with 'ibgw-ops -i {directory} up live' (or paper-up)")
    return int(ExitCode.OK)


def destroy(args: argparse.Namespace) -> int:
    """Delete every resource that provision created for this deployment (found by its mark), VM first."""
    directory, settings, api = _open(args)
    from ibgw_ops.gcp import provision as cloud  # noqa: PLC0415 - cloud libraries load only for cloud verbs

    found = cloud.owned(api, settings)
    if not found:
        print(f"nothing of deployment '{settings.deployment}' in {settings.project}")
        host_inventory.remove(directory, settings)
        return int(ExitCode.OK)
    print(f"deployment '{settings.deployment}' in {settings.project}:")
    print("\n".join(f"  {SINGULAR[item.kind]} {item.name}" for item in found))
    confirm(args, "destroy", f"Delete these {len(found)} resources?", settings.deployment)
    cloud.destroy(api, found, lambda item, deleted: print(
        f"{'deleted' if deleted else 'gone   '} {SINGULAR[item.kind]:<11} {item.name}", flush=True))
    host_inventory.remove(directory, settings)
    return int(ExitCode.OK)


def _open(args: argparse.Namespace) -> tuple[Path, GcpSettings, ComputeApi]:
    """The inventory folder holding gcp.yml, its checked settings, and the Compute API they name.

    The settings first: a bad one is refused before the Google libraries (about 2 s) are imported.
    """
    path = inventory.resolve(args.inventory)
    directory = path if path.is_dir() else path.parent
    settings = load(directory)
    from ibgw_ops.gcp.compute import ComputeApi  # noqa: PLC0415 - cloud libraries load only for cloud verbs

    return directory, settings, ComputeApi(settings)
