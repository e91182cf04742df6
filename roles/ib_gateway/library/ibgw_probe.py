"""Ansible module: the TWS API handshake probe, run on the gateway host against a published port."""

from __future__ import annotations

DOCUMENTATION = r"""
module: ibgw_probe
short_description: Probe an IB Gateway API port with the TWS handshake, optionally waiting until it is ready
description:
  - Tells apart refused, unreachable, not_ready (accepted, no handshake), hung (no nextValidId), ready,
    disconnected (1100/2110) and client_id_in_use. An open port alone proves nothing.
options:
  host: {type: str, default: 127.0.0.1, description: Address to connect to.}
  port: {type: int, required: true, description: The published API port.}
  client_id: {type: int, default: 999, description: Client id reserved for probes.}
  wait: {type: float, default: 0, description: Seconds to wait for ready (0 probes once and never fails).}
  interval: {type: float, default: 0.25, description: Seconds between probes while waiting.}
  container:
    type: str
    description:
      - While waiting, stop early when this container is no longer running or has restarted
        (returned as container_changed).
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.tws_probe import DEFAULT_CLIENT_ID, probe, wait_until_ready  # noqa: E402


def main() -> None:
    """Probe once, or wait; fail only when waiting ran out without the gateway becoming ready."""
    module = AnsibleModule(
        argument_spec={
            "host": {"type": "str", "default": "127.0.0.1"},
            "port": {"type": "int", "required": True},
            "client_id": {"type": "int", "default": DEFAULT_CLIENT_ID},
            "wait": {"type": "float", "default": 0.0},
            "interval": {"type": "float", "default": 0.25},
            "container": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params
    container = params["container"]
    first = _container_state(module, container) if container else None

    def still_starting() -> bool:
        return _container_state(module, container) == first

    if params["wait"] > 0:
        result = wait_until_ready(params["host"], params["port"], client_id=params["client_id"],
                                  timeout=params["wait"], interval=params["interval"],
                                  still_starting=still_starting if first and first[0] == "running" else None)
    else:
        result = probe(params["host"], params["port"], client_id=params["client_id"])
    outcome = result.as_dict()
    if container:
        last = _container_state(module, container)
        outcome["container_state"] = " ".join(last)
        outcome["container_changed"] = last != first
    if params["wait"] > 0 and not result.ready:
        if outcome.get("container_changed"):
            reason = f"container {container} stopped or restarted while starting ({outcome['container_state']})"
        else:
            reason = f"not ready within {params['wait']:g} s"
        module.fail_json(msg=f"{reason}: {result.state} ({result.description})", **outcome)
    module.exit_json(changed=False, **outcome)


def _container_state(module: AnsibleModule, name: str) -> tuple[str, str]:
    """(status, restart count) of a container; ("absent", "") when there is none."""
    rc, out, _ = module.run_command(["docker", "inspect", "--format", "{{.State.Status}} {{.RestartCount}}", name])
    if rc != 0:
        return ("absent", "")
    status, _, restarts = out.strip().partition(" ")
    return (status, restarts)


if __name__ == "__main__":
    main()
