"""Ansible module: one TWS API handshake probe, run on the gateway host against a published port."""

from __future__ import annotations

DOCUMENTATION = r"""
module: ibgw_probe
short_description: Probe an IB Gateway API port once with the TWS handshake
description:
  - Tells apart refused, unreachable, not_ready (accepted, no handshake), hung (no nextValidId), ready,
    disconnected (1100/2110) and client_id_in_use. An open port alone proves nothing. Never fails on a verdict;
    waiting for ready is part of ibgw_gateway_up.
options:
  host: {type: str, default: 127.0.0.1, description: Address to connect to.}
  port: {type: int, required: true, description: The published API port.}
  client_id: {type: int, default: 999, description: Client id reserved for probes.}
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.tws_probe import DEFAULT_CLIENT_ID, probe  # noqa: E402


def main() -> None:
    """Probe once and report the verdict."""
    module = AnsibleModule(
        argument_spec={
            "host": {"type": "str", "default": "127.0.0.1"},
            "port": {"type": "int", "required": True},
            "client_id": {"type": "int", "default": DEFAULT_CLIENT_ID},
        },
        supports_check_mode=True,
    )
    params = module.params
    result = probe(params["host"], params["port"], client_id=params["client_id"])
    module.exit_json(changed=False, **result.as_dict())


if __name__ == "__main__":
    main()
