"""Ansible module: bring one gateway up and wait until its API answers, in a single round trip.

This is the path cron waits on minutes before a pipeline: one module call instead of a task per docker command
(each costs an SSH round trip and a Python start on the host).
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: ibgw_gateway_up
short_description: Start a gateway's container (restart policy held at "no") and wait for the TWS handshake
description:
  - A running container is left alone. Otherwise it is recreated from the compose project (a pending
    configuration applies), its restart policy set to "no" so Docker never retries a failed login, started, and
    the restart-pending marker removed; the caller applies the real policy once the gateway is ready (started=true).
  - Then polls the TWS handshake until ready, and stops early when the container exits or restarts
    (container_changed). Fails when the gateway is not ready in time, with the probe's verdict.
options:
  compose: {type: list, elements: str, required: true, description: The docker compose command for the project.}
  container: {type: str, required: true, description: The container's name.}
  compose_file: {type: path, required: true, description: The project's compose file; missing means not deployed.}
  pending_marker: {type: path, required: true, description: File that marks a pending restart; removed on start.}
  host: {type: str, default: 127.0.0.1, description: Address of the published API port.}
  port: {type: int, required: true, description: The published API port.}
  client_id: {type: int, default: 999, description: Client id reserved for probes.}
  wait: {type: float, required: true, description: Seconds to wait for ready.}
  interval: {type: float, default: 0.25, description: Seconds between probes.}
"""

import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.tws_probe import DEFAULT_CLIENT_ID, wait_until_ready  # noqa: E402


def main() -> None:
    """Start unless running, then wait; fail with the command's output or the probe's verdict."""
    module = AnsibleModule(
        argument_spec={
            "compose": {"type": "list", "elements": "str", "required": True},
            "container": {"type": "str", "required": True},
            "compose_file": {"type": "path", "required": True},
            "pending_marker": {"type": "path", "required": True},
            "host": {"type": "str", "default": "127.0.0.1"},
            "port": {"type": "int", "required": True},
            "client_id": {"type": "int", "default": DEFAULT_CLIENT_ID},
            "wait": {"type": "float", "required": True},
            "interval": {"type": "float", "default": 0.25},
        },
    )
    params = module.params
    container = params["container"]
    started = _start(module) if _container_state(module, container)[0] != "running" else False
    first = _container_state(module, container)
    result = wait_until_ready(params["host"], params["port"], client_id=params["client_id"], timeout=params["wait"],
                              interval=params["interval"],
                              still_starting=lambda: first[0] == "running"
                              and _container_state(module, container) == first)
    last = _container_state(module, container)
    outcome = {**result.as_dict(), "started": started, "container_state": " ".join(last),
               "container_changed": last != first}
    if not result.ready:
        if outcome["container_changed"] or first[0] != "running":
            reason = f"container {container} stopped or restarted while starting ({outcome['container_state']})"
        else:
            reason = f"not ready within {params['wait']:g} s"
        module.fail_json(msg=f"{reason}: {result.state} ({result.description})", changed=started, **outcome)
    module.exit_json(changed=started, **outcome)


def _start(module: AnsibleModule) -> bool:
    params = module.params
    if not os.path.isfile(params["compose_file"]):
        module.fail_json(msg=f"{params['compose_file']} is missing: the gateway is not deployed on this host; "
                             "apply playbooks/site.yml first.", deployed=False)
    for argv in (params["compose"] + ["create", "--force-recreate", "--no-build", "--pull", "never"],
                 ["docker", "update", "--restart", "no", params["container"]],
                 ["docker", "start", params["container"]]):
        rc, out, err = module.run_command(argv)
        if rc != 0:
            module.fail_json(msg=f"{' '.join(argv)} failed: {err.strip() or out.strip()}", rc=rc, changed=True)
    if os.path.exists(params["pending_marker"]):
        os.remove(params["pending_marker"])
    return True


def _container_state(module: AnsibleModule, name: str) -> tuple[str, str]:
    """(status, restart count) of a container; ("absent", "") when there is none."""
    rc, out, _ = module.run_command(["docker", "inspect", "--format", "{{.State.Status}} {{.RestartCount}}", name])
    if rc != 0:
        return ("absent", "")
    status, _, restarts = out.strip().partition(" ")
    return (status, restarts)


if __name__ == "__main__":
    main()
