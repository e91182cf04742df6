"""Ansible module: bring one gateway up and wait until its API answers, in a single round trip.

This is the path cron waits on minutes before a pipeline: one module call instead of a task per docker command
(each costs an SSH round trip and a Python start on the host).
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
    Arms the dead-man switch first when deadman_seconds > 0 (a transient systemd timer that runs the stop script),
    so the gateway is stopped even if the controller never comes back; re-arming restarts the count.
  - >-
    With soft_restart, a running gateway is restarted by IBC itself (RESTART through its command server: the
    session continues, no 2FA; the container and its configuration stay). The old session answers for up to
    62 s more, so ready means an IBC "Login has completed" logged after RESTART, then the handshake; the wait
    gets those 62 s on top. A gateway that is not running fails: a soft restart has no session to continue.
  - >-
    Without soft_restart, a running container is left alone. Otherwise its state and last log lines are kept
    (previous_log, previous_state: Docker drops a container's logs with it), and it is recreated from the compose
    project (a pending configuration applies), its restart policy set to "no" so Docker never retries a failed login,
    started, and the restart-pending marker removed; the caller applies the real policy once the gateway is
    ready (started=true).
  - >-
    Then polls the TWS handshake until ready while following the container's log (IBC's own lines only), and
    stops early when the container exits or restarts (container_changed), at IBC's first "Login failed" or "Too
    many failed login attempts" (login_failed: IBC would retry the same password) and when the session is left
    to another login (session_taken). After a login failure it stops the container at once, before IBC's
    relaunch can try the password again. A fresh login that became ready writes the time to signin_record.
  - >-
    Fails when the gateway is not ready in time, with the probe's verdict and the reason IBC's newest telling
    line gives (session_taken, login_failed, twofa_pending, else not_ready), and IBC's last lines (log_tail).
options:
  compose: {type: list, elements: str, required: true, description: 'The docker compose command for the project.'}
  container: {type: str, required: true, description: 'The container''s name.'}
  image: {type: str, required: true, description: 'The instance''s image (for the message when it is missing).'}
  compose_file: {type: path, required: true, description: 'The project''s compose file; missing means not deployed.'}
  pending_marker: {type: path, required: true, description: 'File that marks a pending restart; removed on start.'}
  lock_file: {type: path, required: true, description: 'The instance''s lock file (flock).'}
  lock_timeout: {type: float, default: 900, description: 'Seconds to wait for the lock.'}
  deadman_seconds: {type: int, default: 0, description: 'Dead-man switch lifetime; 0 for none.'}
  deadman_unit: {type: str, default: "", description: 'Name of the dead-man switch''s transient unit.'}
  stop_command: {type: path, default: "", description: 'What the dead-man switch runs (the stop script).'}
  signin_record: {type: path, default: "", description: 'File that gets the time of a fresh login (live).'}
  previous_log: {type: path, required: true, description: 'Gets the last log lines of the container replaced.'}
  previous_state: {type: path, required: true, description: 'Gets the state of the container replaced (JSON).'}
  previous_lines: {type: int, default: 1000, description: 'How many log lines of the container replaced to keep.'}
  soft_restart: {type: bool, default: false, description: 'Restart a running gateway through IBC.'}
  command_port: {type: int, default: 7462, description: 'IBC''s command server port inside the container.'}
  host: {type: str, default: 127.0.0.1, description: 'Address of the published API port.'}
  port: {type: int, required: true, description: 'The published API port.'}
  client_id: {type: int, default: 999, description: 'Client id reserved for probes.'}
  wait: {type: float, required: true, description: 'Seconds to wait for ready (a soft restart adds 62).'}
  interval: {type: float, default: 0.25, description: 'Seconds between probes.'}
"""

import fcntl  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from typing import IO  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.ibgw_ops.gateway.plugins.module_utils.gateway_container import keep_previous  # noqa: E402
from ansible_collections.ibgw_ops.gateway.plugins.module_utils.gateway_log import FINAL, LOGIN_FAILED, Watch, follow  # noqa: E402
from ansible_collections.ibgw_ops.gateway.plugins.module_utils.ibc_command import send  # noqa: E402
from ansible_collections.ibgw_ops.gateway.plugins.module_utils.tws_probe import (  # noqa: E402
    DEFAULT_CLIENT_ID,
    probe,
    wait_until_ready,
)

# How Docker and compose say that an image is not there (start never pulls: --pull never).
MISSING_IMAGE = re.compile(r"no such image|image .* not found|pull access denied", re.IGNORECASE)
# How long IBC's RESTART keeps the old session (RestartTask: the next minute, or the one after from second 58).
RESTART_LEAD = 62.0


def main() -> None:
    """Lock, arm, start unless running, then wait; fail with the probe's verdict and the reason."""
    module = AnsibleModule(
        argument_spec={
            "compose": {"type": "list", "elements": "str", "required": True},
            "container": {"type": "str", "required": True},
            "image": {"type": "str", "required": True},
            "compose_file": {"type": "path", "required": True},
            "pending_marker": {"type": "path", "required": True},
            "lock_file": {"type": "path", "required": True},
            "lock_timeout": {"type": "float", "default": 900.0},
            "deadman_seconds": {"type": "int", "default": 0},
            "deadman_unit": {"type": "str", "default": ""},
            "stop_command": {"type": "path", "default": ""},
            "signin_record": {"type": "path", "default": ""},
            "previous_log": {"type": "path", "required": True},
            "previous_state": {"type": "path", "required": True},
            "previous_lines": {"type": "int", "default": 1000},
            "soft_restart": {"type": "bool", "default": False},
            "command_port": {"type": "int", "default": 7462},
            "host": {"type": "str", "default": "127.0.0.1"},
            "port": {"type": "int", "required": True},
            "client_id": {"type": "int", "default": DEFAULT_CLIENT_ID},
            "wait": {"type": "float", "required": True},
            "interval": {"type": "float", "default": 0.25},
        },
    )
    params = module.params
    if not os.path.isfile(params["compose_file"]):
        module.fail_json(msg=f"{params['compose_file']} is missing: the gateway is not deployed on this host; "
                             "apply playbooks/site.yml first.", deployed=False)
    with open(params["lock_file"], "a") as lock:
        _lock(module, lock)
        if params["deadman_seconds"] > 0:
            _arm_deadman(module)
        _up(module)


def _up(module: AnsibleModule) -> None:
    """Start or soft-restart, then wait while following the log: IBC's lines end the wait before the probe can."""
    params = module.params
    container = params["container"]
    soft = params["soft_restart"]
    running = _container_state(module, container)[0] == "running"
    since = time.time()
    if soft:
        _soft_restart(module, running)
    started = False if running else _start(module)
    first = _container_state(module, container)
    timeout = params["wait"] + (RESTART_LEAD if soft else 0.0)
    deadline = time.monotonic() + timeout
    watch = Watch()
    # A gateway left running is judged by its whole log; a started or restarted one by what it wrote since.
    with follow(container, since if started or soft else None) as log:

        def still_starting() -> bool:
            watch.feed(log.read())
            return (watch.reason not in FINAL and first[0] == "running"
                    and _container_state(module, container) == first)

        # The old session answers until IBC restarts: only a login after RESTART is the new session's.
        while soft and not watch.logged_in and time.monotonic() < deadline and still_starting():
            time.sleep(params["interval"])
        if soft and not watch.logged_in:
            result = probe(params["host"], params["port"], client_id=params["client_id"])
        else:
            result = wait_until_ready(params["host"], params["port"], client_id=params["client_id"],
                                      timeout=deadline - time.monotonic(), interval=params["interval"],
                                      still_starting=still_starting)
        watch.feed(log.read())
    if watch.reason == LOGIN_FAILED:
        # IBC relaunches itself in the container and tries the same password again as soon as its login dialog
        # is back: stop it now, not after the round trip to the caller's tidy stop (nothing is logged in).
        module.run_command(["docker", "stop", "--time", "10", container])
    last = _container_state(module, container)
    ready = result.ready and (watch.logged_in or not soft)
    outcome = {**result.as_dict(), "ready": ready, "started": started, "restarted": soft,
               "restart_pending": os.path.exists(params["pending_marker"]), "container_state": " ".join(last),
               "container_changed": last != first}
    if not ready:
        if watch.reason in FINAL:
            what = watch.explain()
        elif outcome["container_changed"] or first[0] != "running":
            what = f"container {container} stopped or restarted while starting ({outcome['container_state']})"
        elif soft and not watch.logged_in:
            what = f"IBC logged no new login within {timeout:g} s of RESTART"
        else:
            what = f"not ready within {timeout:g} s"
        module.fail_json(msg=f"{what}: {result.state} ({result.description})", reason=watch.reason or "not_ready",
                         log_tail=list(watch.quoted), changed=started or soft, **outcome)
    if started and params["signin_record"]:
        _write_signin_record(params["signin_record"])
    module.exit_json(changed=started or soft, **outcome)


def _lock(module: AnsibleModule, lock: IO[str]) -> None:
    deadline = time.monotonic() + module.params["lock_timeout"]
    while True:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                module.fail_json(msg=f"another start or stop of {module.params['container']} held the lock "
                                     f"{module.params['lock_file']} for {module.params['lock_timeout']:g} s")
            time.sleep(0.2)


def _arm_deadman(module: AnsibleModule) -> None:
    """(Re)arm the transient timer; --collect removes its units once they have run, whatever the outcome."""
    params = module.params
    unit = params["deadman_unit"]
    module.run_command(["systemctl", "stop", f"{unit}.timer"])
    module.run_command(["systemctl", "reset-failed", f"{unit}.timer", f"{unit}.service"])
    argv = ["systemd-run", "--collect", f"--unit={unit}", f"--on-active={params['deadman_seconds']}s",
            "--timer-property=AccuracySec=1s", f"--description=ibgw-ops dead-man switch for {params['container']}",
            params["stop_command"]]
    rc, out, err = module.run_command(argv)
    if rc != 0:
        module.fail_json(msg=f"{' '.join(argv)} failed: {err.strip() or out.strip()}", rc=rc)


def _soft_restart(module: AnsibleModule, running: bool) -> None:
    """IBC RESTART through its command server; the gateway restarts itself within RESTART_LEAD seconds."""
    params = module.params
    if not running:
        module.fail_json(msg=f"{params['container']} is not running: a soft restart continues a running session; "
                             "start it (a live login needs 2FA: ibgw-ops live-signin)", reason="failed")
    took, said = send(params["container"], "RESTART", params["command_port"], module.run_command)
    if not took:
        module.fail_json(msg=f"IBC's command server did not accept RESTART: {said}", reason="failed", changed=False)


def _start(module: AnsibleModule) -> bool:
    params = module.params
    keep_previous(module.run_command, params["container"], params["previous_log"], params["previous_state"],
                  params["previous_lines"])
    for argv in (params["compose"] + ["create", "--force-recreate", "--no-build", "--pull", "never"],
                 ["docker", "update", "--restart", "no", params["container"]],
                 ["docker", "start", params["container"]]):
        rc, out, err = module.run_command(argv)
        if rc != 0 and MISSING_IMAGE.search(err + out):
            module.fail_json(msg=f"image {params['image']} is not on this host, and a start never pulls: run deploy "
                                 "(playbooks/site.yml), which pulls it or loads ib_gateway_image_archive",
                             rc=rc, reason="failed")
        if rc != 0:
            module.fail_json(msg=f"{' '.join(argv)} failed: {err.strip() or out.strip()}", rc=rc, changed=True,
                             reason="failed")
    if os.path.exists(params["pending_marker"]):
        os.remove(params["pending_marker"])
    return True


def _write_signin_record(path: str) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w") as record:
        record.write(datetime.now(UTC).isoformat(timespec="seconds") + "\n")
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def _container_state(module: AnsibleModule, name: str) -> tuple[str, str]:
    """(status, restart count) of a container; ("absent", "") when there is none."""
    rc, out, _ = module.run_command(["docker", "inspect", "--format", "{{.State.Status}} {{.RestartCount}}", name])
    if rc != 0:
        return ("absent", "")
    status, _, restarts = out.strip().partition(" ")
    return (status, restarts)


if __name__ == "__main__":
    main()
