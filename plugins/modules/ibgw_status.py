"""Ansible module: everything ``status`` shows about one gateway, read on the host in one round trip.

The container's state, start time and image (its reference, image id and registry digest); how it last ended (exit code,
OOM kill), its restart count and memory in use; how the container it replaced ended (previous_state); a pending restart;
the weekly sign-in record (live); the newest login in the ledger (full or resumed, and what started it); the TWS
handshake probe of an existing container (refused when it is stopped) with the notices it saw; and for a gateway that
is not ready, what its last log lines tell (session taken, login failed, waiting for 2FA). With probe false (deploy),
only the container and its image.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: ibgw_status
short_description: Report one gateway's container, probe verdict, sign-in record and log reason
description:
  - >-
    Never changes anything. A missing container is reported as "absent".
options:
  container: {type: str, required: true, description: 'The container''s name.'}
  pending_marker: {type: path, required: true, description: 'The restart-pending marker file.'}
  previous_state: {type: path, default: "", description: 'The replaced container''s state (JSON), "" for none.'}
  signin_record: {type: path, default: "", description: 'The sign-in record file (live), "" for none.'}
  logins_file: {type: path, default: "", description: 'The login ledger (JSON), "" for none.'}
  host: {type: str, default: 127.0.0.1, description: 'Address of the published API port.'}
  port: {type: int, required: true, description: 'The published API port.'}
  client_id: {type: int, default: 999, description: 'Client id reserved for probes.'}
  probe: {type: bool, default: true,
    description: 'Probe the API and read the log reason; false for the container only.'}
  configured_image: {type: str, default: "",
    description: 'The reference the inventory sets: its image id and digest are reported as pending ("" for none).'}
"""

import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.ibgw_ops.gateway.plugins.module_utils.gateway_container import (  # noqa: E402
    configured,
    inspect,
    memory_in_use,
    read_previous,
)
from ansible_collections.ibgw_ops.gateway.plugins.module_utils.gateway_log import read_container  # noqa: E402
from ansible_collections.ibgw_ops.gateway.plugins.module_utils.login_ledger import load as load_ledger  # noqa: E402
from ansible_collections.ibgw_ops.gateway.plugins.module_utils.tws_probe import DEFAULT_CLIENT_ID, probe  # noqa: E402


def main() -> None:
    """Inspect, read the files, probe or read the logs; report."""
    module = AnsibleModule(
        argument_spec={
            "container": {"type": "str", "required": True},
            "pending_marker": {"type": "path", "required": True},
            "previous_state": {"type": "path", "default": ""},
            "signin_record": {"type": "path", "default": ""},
            "logins_file": {"type": "path", "default": ""},
            "host": {"type": "str", "default": "127.0.0.1"},
            "port": {"type": "int", "required": True},
            "client_id": {"type": "int", "default": DEFAULT_CLIENT_ID},
            "probe": {"type": "bool", "default": True},
            "configured_image": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    params = module.params
    container = params["container"]
    found = inspect(module.run_command, module.get_bin_path("docker"), container)
    running = found["running"]
    report = {
        **{key: found[key] for key in ("container", "started_at", "finished_at", "exit_code", "oom_killed",
                                       "restart_count", "image", "image_id", "image_digest")},
        "memory_bytes": memory_in_use(found["pid"]) if running else None,
        "previous": read_previous(params["previous_state"]) if params["previous_state"] else None,
        "restart_pending": running and os.path.exists(params["pending_marker"]),
        "signed_in_at": _read(params["signin_record"]),
        "last_login": load_ledger(params["logins_file"]).last,
        "probe": "not probed",
        "accounts": [],
        "server_version": None,
        "codes": [],
        "reason": None,
    }
    if params["configured_image"]:
        pending = configured(module.run_command, module.get_bin_path("docker"), params["configured_image"])
        report.update(image_pending_id=pending["image_id"], image_pending_digest=pending["image_digest"])
    if found["exists"] and params["probe"]:
        result = probe(params["host"], params["port"], client_id=params["client_id"])
        report.update(probe=result.state, accounts=result.accounts, server_version=result.server_version,
                      codes=result.codes)
    if found["exists"] and params["probe"] and not (running and report["probe"] == "ready"):
        report["reason"] = read_container(module.run_command, container)[0]
    module.exit_json(changed=False, **report)


def _read(path: str) -> str:
    if not path:
        return ""
    try:
        with open(path) as record:
            return record.read().strip()
    except OSError:
        return ""


if __name__ == "__main__":
    main()
