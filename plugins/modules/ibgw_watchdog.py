"""Ansible module: the watchdog's systemd units on the host, a timer per gateway instance, in one round trip.

Template units (``ibgw-watchdog@.service`` and ``.timer``) so that one pair serves every instance; each instance's
timer is ``ibgw-watchdog@<instance>.timer``. Writing the units, reloading systemd, enabling and starting each timer,
and stopping the timer of an instance that is gone, as separate tasks, would cost a round trip each on every deploy.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: ibgw_watchdog
short_description: Install, start or remove the watchdog's systemd timers
description:
  - >-
    With state present, writes each of units into unit_dir (root, 0644) when its content differs, reloads systemd
    when one changed, then enables and starts <prefix><instance>.timer for each of instances (restarted when the
    timer unit changed) and stops and disables the timers of any other instance.
  - >-
    With state absent, stops and disables every <prefix>*.timer and removes the units.
  - >-
    Removes each file of remove that exists (the alert webhook's file when no webhook is set). Check mode reports
    what would change, changing nothing.
options:
  units:
    type: dict
    required: true
    description: "Unit file name -> content; exactly one name ends with '@.timer' (the timer template)."
  state: {type: str, choices: [present, absent], default: present, description: 'Installed or removed.'}
  instances: {type: list, elements: str, default: [], description: 'The instances whose timer runs.'}
  remove: {type: list, elements: path, default: [], description: 'Files to remove if they exist.'}
  unit_dir: {type: path, default: /etc/systemd/system, description: 'Where the units go.'}
"""

RETURN = r"""
changes: {type: list, description: 'The files and timers that changed (or would in check mode).'}
"""

import glob  # noqa: E402
import os  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.ibgw_ops.gateway.plugins.module_utils.host_files import (  # noqa: E402
    HostFileError,
    differs,
    write_atomically,
)


class Units:
    """The units on the host and what this run changed."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.changes: list[str] = []
        timers = [name for name in self.params["units"] if name.endswith("@.timer")]
        if len(timers) != 1:
            module.fail_json(msg=f"units: exactly one timer template (name@.timer) expected, got {timers}")
        self.prefix = timers[0].removesuffix(".timer")

    def systemctl(self, *args: str) -> str:
        """Run systemctl (never in check mode); fail naming the command."""
        if self.module.check_mode:
            return ""
        rc, out, err = self.module.run_command(["systemctl", *args])
        if rc != 0:
            self.module.fail_json(msg=f"systemctl {' '.join(args)} failed: {err.strip() or out.strip()}", rc=rc)
        return str(out)

    def running_timers(self) -> set[str]:
        """The instances whose timer is enabled or loaded now."""
        wants = glob.glob(os.path.join(self.params["unit_dir"], "timers.target.wants", f"{self.prefix}*.timer"))
        rc, out, _ = self.module.run_command(["systemctl", "list-units", "--all", "--plain", "--no-legend",
                                              f"{self.prefix}*.timer"])
        loaded = [line.split()[0] for line in str(out).splitlines() if line.strip()] if rc == 0 else []
        names = {os.path.basename(path) for path in wants} | set(loaded)
        return {name.removeprefix(self.prefix).removesuffix(".timer") for name in names}

    def timer(self, instance: str) -> str:
        """The instance's timer unit."""
        return f"{self.prefix}{instance}.timer"

    def stop(self, instance: str) -> None:
        """Stop and disable the instance's timer."""
        self.changes.append(self.timer(instance))
        self.systemctl("disable", "--now", self.timer(instance))

    def write(self) -> bool:
        """Write the units that differ; whether the timer template changed."""
        timer_changed = False
        for name, content in self.params["units"].items():
            path = os.path.join(self.params["unit_dir"], name)
            if differs(path, str(content).encode(), 0, 0, 0o644):
                self.changes.append(path)
                timer_changed = timer_changed or name.endswith(".timer")
                if not self.module.check_mode:
                    write_atomically(path, str(content).encode(), 0, 0, 0o644)
        return timer_changed

    def unlink(self, path: str) -> bool:
        """Remove the file; whether it was there."""
        if not os.path.lexists(path):
            return False
        self.changes.append(path)
        if not self.module.check_mode:
            os.unlink(path)
        return True


def run(module: AnsibleModule) -> dict[str, Any]:
    """Present: units, reload, each timer enabled and active, stale timers stopped. Absent: all of it undone."""
    units = Units(module)
    params = module.params
    running = units.running_timers()
    wanted = set(params["instances"]) if params["state"] == "present" else set()
    for instance in sorted(running - wanted):
        units.stop(instance)
    if params["state"] == "present":
        timer_changed = units.write()
        if units.changes:
            units.systemctl("daemon-reload")
        for instance in sorted(wanted):
            timer = units.timer(instance)
            active = module.run_command(["systemctl", "is-active", "--quiet", timer])[0] == 0
            enabled = module.run_command(["systemctl", "is-enabled", "--quiet", timer])[0] == 0
            if not (active and enabled):
                units.changes.append(timer)
                units.systemctl("enable", "--now", timer)
            elif timer_changed:
                units.changes.append(timer)
                units.systemctl("restart", timer)
    elif any([units.unlink(os.path.join(params["unit_dir"], name)) for name in params["units"]]):
        units.systemctl("daemon-reload")
    for path in params["remove"]:
        units.unlink(path)
    return {"changed": bool(units.changes), "changes": units.changes}


def main() -> None:
    """Apply the watchdog's units; fail naming the file or the systemctl command."""
    module = AnsibleModule(
        argument_spec={
            "units": {"type": "dict", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "instances": {"type": "list", "elements": "str", "default": []},
            "remove": {"type": "list", "elements": "path", "default": []},
            "unit_dir": {"type": "path", "default": "/etc/systemd/system"},
        },
        supports_check_mode=True,
    )
    try:
        result = run(module)
    except (HostFileError, OSError) as exc:
        module.fail_json(msg=f"the watchdog's units: {exc}", changed=False)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
