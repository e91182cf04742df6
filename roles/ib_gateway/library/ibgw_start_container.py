"""Ansible module: create and start a gateway's container in one round trip, Docker's restart policy held at "no".

One module call instead of six tasks: each task costs a round trip and a Python start on the host, and this is
the path cron waits on minutes before a pipeline.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: ibgw_start_container
short_description: Start a stopped gateway container, recreated, with its restart policy held at "no"
description:
  - Leaves a running container alone (changed=false). Otherwise recreates it from the compose project (so a
    pending configuration applies), sets its restart policy to "no" so Docker never retries a failed login, starts
    it, and removes the restart-pending marker. The caller applies the real policy once the gateway is ready.
options:
  compose: {type: list, elements: str, required: true, description: The docker compose command for the project.}
  container: {type: str, required: true, description: The container's name.}
  compose_file: {type: path, required: true, description: The project's compose file; missing means not deployed.}
  pending_marker: {type: path, required: true, description: File that marks a pending restart; removed on start.}
"""

import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402


def main() -> None:
    """Start the container unless it runs; fail with the command's error output otherwise."""
    module = AnsibleModule(
        argument_spec={
            "compose": {"type": "list", "elements": "str", "required": True},
            "container": {"type": "str", "required": True},
            "compose_file": {"type": "path", "required": True},
            "pending_marker": {"type": "path", "required": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    if not os.path.isfile(params["compose_file"]):
        module.fail_json(msg=f"{params['compose_file']} is missing: the gateway is not deployed on this host; "
                             "apply playbooks/site.yml first.")
    rc, out, _ = module.run_command(["docker", "inspect", "--format", "{{.State.Running}}", params["container"]])
    if rc == 0 and out.strip() == "true":
        module.exit_json(changed=False, started=False)
    if module.check_mode:
        module.exit_json(changed=True, started=True)
    for argv in (params["compose"] + ["create", "--force-recreate", "--no-build", "--pull", "never"],
                 ["docker", "update", "--restart", "no", params["container"]],
                 ["docker", "start", params["container"]]):
        rc, out, err = module.run_command(argv)
        if rc != 0:
            module.fail_json(msg=f"{' '.join(argv)} failed: {err.strip() or out.strip()}", rc=rc)
    if os.path.exists(params["pending_marker"]):
        os.remove(params["pending_marker"])
    module.exit_json(changed=True, started=True)


if __name__ == "__main__":
    main()
