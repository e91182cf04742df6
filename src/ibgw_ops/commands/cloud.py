"""``ibgw-ops provision | destroy``: the Google Cloud resources of a deployment, from ``<inventory>/gcp.yml``.

Settings are checked completely before the first API call. The Compute endpoint is the default one, or
``$IBGW_OPS_COMPUTE_ENDPOINT``, else ``compute_endpoint`` in gcp.yml (private endpoints, the tests' fake); an
environment value that replaces gcp.yml's is announced. The cloud libraries are imported inside the verbs, so other
verbs start without them. Drift or foreign rules that leave the gateway open exit 10 (ATTENTION). Drift whose fix
would interrupt the running VM is left, with the command that applies it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ibgw_ops import inventory, lifecycle
from ibgw_ops.commands.options import confirm, open_runner, runner_options
from ibgw_ops.errors import BadInput, ExitCode
from ibgw_ops.gcp import host_inventory, instance_ports
from ibgw_ops.gcp.desired import SINGULAR
from ibgw_ops.gcp.settings import ENDPOINT_ENV, GcpSettings, load

if TYPE_CHECKING:
    from ibgw_ops.gcp.compute import ComputeApi
    from ibgw_ops.gcp.provision import ForeignRule
    from ibgw_ops.gcp.reconcile import Step


def register(verbs: Any) -> None:
    """Add the cloud verbs."""
    parser = verbs.add_parser("provision", help=provision.__doc__, description=provision.__doc__,
                              parents=[runner_options()])
    parser.add_argument("--plan", action="store_true",
                        help="print what would be created, changed or left as is; change nothing")
    parser.add_argument("--skip-deploy", action="store_true",
                        help="create the cloud resources and the inventory, but do not configure the VM")
    parser.add_argument("--accept-foreign-rules", action="store_true",
                        help="go on (exit 0, deploy) although firewall rules this deployment does not manage admit "
                             "the gateway's API ports or SSH; they are still listed")
    parser.set_defaults(handler=provision)

    parser = verbs.add_parser("destroy", help=destroy.__doc__, description=destroy.__doc__)
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.set_defaults(handler=destroy)


def provision(args: argparse.Namespace) -> int:
    """Create or reconcile the network, addresses, firewall rules and VM; write the inventory; deploy the VM."""
    directory, settings, api = _open(args, check_ports=True, check_key=not (args.plan or args.skip_deploy))
    from ibgw_ops.gcp import provision as cloud  # noqa: PLC0415 - cloud libraries load only for cloud verbs

    if args.plan:
        print(f"plan for deployment '{settings.deployment}' in {settings.project}/{settings.zone}:")
        steps = cloud.plan(api, settings)
        for step in steps:
            print(cloud.describe(step))
        code = _foreign(cloud.foreign_rules(api, settings), args.accept_foreign_rules)
        return int(ExitCode.ATTENTION) if _left_open(steps) else code

    steps = cloud.apply(api, settings, lambda step: print(cloud.describe(step, done=True), flush=True))
    _warn_unfixable(steps)
    external = cloud.external_ip(api, settings)
    egress = cloud.egress_ip(api, settings, external)
    if host_inventory.write(directory, settings, external, egress):
        print(f"inventory written: {directory / 'hosts.yml'} (egress IP {egress or 'automatic, may change'})")
    code = _foreign(cloud.foreign_rules(api, settings), args.accept_foreign_rules)
    if code != ExitCode.OK:
        print("ibgw-ops: deploy skipped: remove or narrow the rules above, or accept them with "
              "--accept-foreign-rules", file=sys.stderr)
        return code
    if not args.skip_deploy:
        with open_runner(args, directory) as runner:
            lifecycle.wait_for_hosts(runner)
            lifecycle.deploy(runner)
        print(f"deployed: start the gateways with 'ibgw-ops -i {directory} up live' (or paper-up)")
    return int(ExitCode.ATTENTION) if _left_open(steps) else int(ExitCode.OK)


def _warn_unfixable(steps: list[Step]) -> None:
    """Warn of the drift provision left, with what the operator can do about it."""
    for step in steps:
        for drift in step.unfixable:
            advice = (f"when the interruption is acceptable (the gateway sessions end): {drift.command}"
                      if drift.command else "recreate it (destroy, provision) when a stop is acceptable")
            print(f"ibgw-ops: warning: {SINGULAR[step.resource.kind]} {step.resource.name}: {drift.field} differs "
                  f"and {drift.note}; {advice}", file=sys.stderr)


def _left_open(steps: list[Step]) -> bool:
    """Whether drift that matters is left until the VM stops (a service account swapped in): exit 10.

    Drift only a recreate fixes (machine type, a subnet's range) is a setting not yet applied, not an opening.
    """
    from ibgw_ops.gcp.reconcile import STOPPED_ONLY  # noqa: PLC0415 - cloud libraries load only for cloud verbs

    return any(drift.note == STOPPED_ONLY for step in steps for drift in step.unfixable)


def _foreign(rules: list[ForeignRule], accepted: bool) -> int:
    """List the foreign rules; exit 10 (ATTENTION) for them unless the operator accepted them."""
    from ibgw_ops.gcp.provision import describe_foreign  # noqa: PLC0415 - cloud libraries load only for cloud verbs

    for rule in rules:
        print(describe_foreign(rule))
    if rules and not accepted:
        print(f"ibgw-ops: attention: {len(rules)} firewall rule(s) not managed by this deployment admit the "
              "gateway's API ports or SSH (the IB API has no authentication)", file=sys.stderr)
        return int(ExitCode.ATTENTION)
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
    print("\n".join(f"  {SINGULAR[item.kind]} {item.name}{' (deletion protection lifted first)' * item.protected}"
                    for item in found))
    confirm(args, "destroy", f"Delete these {len(found)} resources?", settings.deployment)
    cloud.destroy(api, found, lambda item, deleted: print(
        f"{'deleted' if deleted else 'gone   '} {SINGULAR[item.kind]:<11} {item.name}", flush=True))
    host_inventory.remove(directory, settings)
    return int(ExitCode.OK)


def _open(args: argparse.Namespace, *, check_ports: bool = False,
          check_key: bool = False) -> tuple[Path, GcpSettings, ComputeApi]:
    """The inventory folder holding gcp.yml, its checked settings, and the Compute API they name.

    The settings first: a bad one is refused before the Google libraries (about 2 s) are imported. Provision also
    checks api.ports against the instances' ports; destroy does not need them to agree. A provision that deploys
    needs the SSH key: a missing one is refused before the cloud changes, not after.
    """
    path = inventory.resolve(args.inventory)
    directory = path if path.is_dir() else path.parent
    settings = load(directory)
    if check_ports:
        instance_ports.check(directory, settings)
    key = Path(settings.ssh_private_key_file).expanduser()
    if check_key and not key.is_file():
        raise BadInput("ssh.private_key_file", f"{key} is not a file",
                       "the SSH private key registered with OS Login, or provision --skip-deploy")
    if settings.compute_endpoint_overridden:
        print(f"ibgw-ops: Compute endpoint {settings.compute_endpoint} from ${ENDPOINT_ENV}, not gcp.yml's "
              f"compute_endpoint {settings.compute_endpoint_overridden}", file=sys.stderr)
    from ibgw_ops.gcp.compute import ComputeApi  # noqa: PLC0415 - cloud libraries load only for cloud verbs

    return directory, settings, ComputeApi(settings)
