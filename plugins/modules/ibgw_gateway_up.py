"""Ansible module: bring one gateway up and wait until its API answers, in a single round trip.

This is the path cron waits on minutes before a pipeline: one module call instead of a task per docker command
(each costs an SSH round trip and a Python start on the host). The start itself is module_utils/gateway_start.py,
which a paper window's timer runs on the VM as well.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: ibgw_gateway_up
short_description: Start a gateway's container (restart policy held at "no") and wait for the TWS handshake
description:
  - >-
    Holds the instance's lock (the file the stop script locks too) for the whole call, so concurrent starts and
    stops of one instance run one after the other; a second start finds the gateway running.
  - >-
    Arms the dead-man switch first when the settings' deadman_seconds > 0 (a transient systemd timer that runs the
    stop script), so the gateway is stopped even if the controller never comes back; re-arming restarts the count.
  - >-
    With soft_restart, a running gateway is restarted by IBC itself (RESTART through its command server: the
    session continues, no 2FA; the container and its configuration stay). The old session answers for up to
    62 s more, so ready means an IBC "Login has completed" logged after RESTART, then the handshake; the wait
    gets those 62 s on top. A gateway that is not running fails: a soft restart has no session to continue.
  - >-
    Without soft_restart, a running container is left alone. Otherwise its state and last log lines are kept
    (the settings' previous_log, previous_state: Docker drops a container's logs with it), and it is recreated from
    the compose project (a pending configuration applies), its restart policy set to "no" so Docker never retries a
    failed login, started, and the restart-pending marker removed; once the gateway is ready, it gets the
    instance's own restart policy (the settings' restart_policy).
  - >-
    Then polls the TWS handshake until ready while following the container's log (IBC's own lines only), and
    stops early when the container exits or restarts (container_changed), at IBC's first "Login failed" or "Too
    many failed login attempts" (login_failed: IBC would retry the same password) and when the session is left
    to another login (session_taken). After a login failure it stops the container at once, before IBC's
    relaunch can try the password again. A fresh login that became ready writes the time to the settings'
    signin_record.
  - >-
    Fails when the gateway is not ready in time, with the probe's verdict and the reason IBC's newest telling
    line gives (session_taken, login_failed, twofa_pending, else not_ready), and IBC's last lines (log_tail).
  - >-
    Each docker and systemctl call is killed after 120 s, as in a paper window's start on the VM: a hung Docker
    fails the start naming the call instead of holding cron's paper-up forever.
options:
  settings:
    type: path
    required: true
    description: >-
      The instance's start settings (start.json, written by deploy): compose command, container, image, compose
      file, restart-pending marker, lock file and timeout, dead-man switch lifetime, unit, stop command and grace
      period, sign-in record, the previous container's files, IBC's command port, the API's address and port, the
      probe's client id, the wait and the probe interval. Missing means not deployed.
  soft_restart: {type: bool, default: false, description: 'Restart a running gateway through IBC.'}
  wait: {type: float, description: 'Seconds to wait for ready instead of the settings'' (a soft restart adds 62).'}
"""

import json  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.ibgw_ops.gateway.plugins.module_utils.gateway_start import (  # noqa: E402
    StartFailed,
    run_bounded,
    start,
)


def main() -> None:
    """Read the instance's start settings, start and wait; fail with the probe's verdict and the reason."""
    module = AnsibleModule(
        argument_spec={
            "settings": {"type": "path", "required": True},
            "soft_restart": {"type": "bool", "default": False},
            "wait": {"type": "float"},
        },
    )
    params = module.params
    try:
        with open(params["settings"]) as settings:
            loaded = json.load(settings)
    except OSError:
        module.fail_json(msg=f"{params['settings']} is missing: the gateway is not deployed on this host (or by an "
                             "older release); apply playbooks/site.yml first.", deployed=False)
    loaded.update(soft_restart=params["soft_restart"], **({} if params["wait"] is None else {"wait": params["wait"]}))
    try:
        outcome = start(loaded, run_bounded)
    except StartFailed as failed:
        module.fail_json(msg=failed.msg, **failed.fields)
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
