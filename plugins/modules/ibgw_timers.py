"""Ansible module: every systemd timer the ib_gateway role keeps on a host, in one round trip.

The paper windows' and the weekly sign-ins' units (rendered on the controller by the filters
ib_gateway_window_units and ib_gateway_signin_units): the host's units under the given prefixes become exactly
those; what is no longer wanted (a window or an instance gone from the inventory) is disabled and removed, systemd
reloaded once, each timer kept enabled and active. The watchdog's template units and a timer per instance: written,
enabled and started, a removed instance's timer stopped, or every one of them removed. Each call is a round trip:
both kinds are one call.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: ibgw_timers
short_description: The host's window, sign-in and watchdog timers as systemd units
description:
  - >-
    Makes the host's units under the prefixes exactly units, timers enabled and active. Unit files are root-owned,
    0644, in unit_dir. A changed timer is restarted so that systemd computes its next elapse from the new calendar.
  - >-
    With watchdog.state present, writes each of watchdog.units (root, 0644) when its content differs, reloads systemd
    when one changed, then enables and starts <prefix><instance>.timer for each of watchdog.instances (restarted when
    the timer unit changed) and stops and disables the timers of any other instance. With watchdog.state absent,
    stops and disables every <prefix>*.timer and removes the units. Removes each file of watchdog.remove that exists
    (an alert destination's file when it is not set).
  - >-
    Check mode reports what would change, writing nothing.
options:
  units: {type: dict, default: {}, description: 'File name -> content of every wanted window and sign-in unit.'}
  prefixes:
    type: list
    elements: str
    default: [ibgw-window-]
    description: The prefixes that mark the units this module owns; every wanted unit starts with one of them.
  watchdog:
    type: dict
    description: The watchdog's timers; none when not given.
    suboptions:
      units:
        type: dict
        required: true
        description: "Unit file name -> content; exactly one name ends with '@.timer' (the timer template)."
      state: {type: str, choices: [present, absent], default: present, description: 'Installed or removed.'}
      instances: {type: list, elements: str, default: [], description: 'The instances whose timer runs.'}
      remove: {type: list, elements: path, default: [], description: 'Files to remove if they exist.'}
  unit_dir: {type: path, default: /etc/systemd/system, description: 'Where the unit files go.'}
"""

RETURN = r"""
written: {type: list, description: 'The window and sign-in unit files written (or that would be).'}
removed: {type: list, description: 'The window and sign-in unit files removed.'}
started: {type: list, description: 'The window and sign-in timers (re)started.'}
watchdog: {type: dict, description: 'changes: the watchdog''s files and timers that changed.'}
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


def windows(module: AnsibleModule) -> dict[str, Any]:
    """Write, remove, reload, enable: the unit files changed and the timers (re)started."""
    params = module.params
    units: dict[str, str] = {str(name): str(content) for name, content in params["units"].items()}
    prefixes = tuple(params["prefixes"])
    stray = [name for name in units if not name.startswith(prefixes) or os.path.basename(name) != name]
    if stray:
        module.fail_json(msg=f"units: names must be file names starting with {' or '.join(prefixes)} (got {stray})")
    directory = params["unit_dir"]
    # Unit files only: a drop-in folder (<unit>.d, as `systemctl edit` makes) is the operator's and stays.
    present = sorted(name for name in os.listdir(directory) if name.startswith(prefixes)
                     and not os.path.isdir(os.path.join(directory, name))) if os.path.isdir(directory) else []
    written = [name for name, content in sorted(units.items())
               if differs(os.path.join(directory, name), content.encode(), 0, 0, 0o644)]
    removed = [name for name in present if name not in units]
    timers = sorted(name for name in units if name.endswith(".timer"))
    idle = [name for name in timers if name not in written and not _running(module, name)]
    changed = bool(written or removed or idle)
    if module.check_mode or not changed:
        return {"changed": changed, "written": written, "removed": removed, "started": idle}
    for name in (name for name in removed if name.endswith(".timer")):
        _systemctl(module, "disable", "--now", name)
    for name in removed:
        os.unlink(os.path.join(directory, name))
    for name in written:
        write_atomically(os.path.join(directory, name), units[name].encode(), 0, 0, 0o644)
    _systemctl(module, "daemon-reload")
    started = sorted(set(idle) | {name for name in written if name.endswith(".timer")})
    for name in started:
        _systemctl(module, "enable", name)
        _systemctl(module, "restart", name)
    return {"changed": True, "written": written, "removed": removed, "started": started}


def _running(module: AnsibleModule, timer: str) -> bool:
    enabled = module.run_command(["systemctl", "is-enabled", "--quiet", timer])[0] == 0
    return enabled and bool(module.run_command(["systemctl", "is-active", "--quiet", timer])[0] == 0)


def _systemctl(module: AnsibleModule, *args: str) -> None:
    rc, out, err = module.run_command(["systemctl", *args])
    if rc != 0:
        module.fail_json(msg=f"systemctl {' '.join(args)} failed: {err.strip() or out.strip()}", rc=rc)


class Units:
    """The watchdog's units on the host and what this run changed."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = {**module.params["watchdog"], "unit_dir": module.params["unit_dir"]}
        self.changes: list[str] = []
        timers = [name for name in self.params["units"] if name.endswith("@.timer")]
        if len(timers) != 1:
            module.fail_json(msg=f"watchdog.units: exactly one timer template (name@.timer) expected, got {timers}")
        self.prefix = timers[0].removesuffix(".timer")

    def systemctl(self, *args: str) -> None:
        """Run systemctl (never in check mode); fail naming the command."""
        if not self.module.check_mode:
            _systemctl(self.module, *args)

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


def watchdog(module: AnsibleModule) -> dict[str, Any]:
    """Present: units, reload, each timer enabled and active, stale timers stopped. Absent: all of it undone."""
    units = Units(module)
    params = units.params
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
            if not _running(module, timer):
                units.changes.append(timer)
                units.systemctl("enable", "--now", timer)
            elif timer_changed:
                units.changes.append(timer)
                units.systemctl("restart", timer)
    elif any([units.unlink(os.path.join(params["unit_dir"], name)) for name in params["units"]]):
        units.systemctl("daemon-reload")
    for path in params["remove"]:
        units.unlink(path)
    return {"changes": units.changes}


def main() -> None:
    """Apply the windows' and the watchdog's units; fail naming the file or the systemctl command."""
    module = AnsibleModule(
        argument_spec={
            "units": {"type": "dict", "default": {}},
            "prefixes": {"type": "list", "elements": "str", "default": ["ibgw-window-"]},
            "watchdog": {"type": "dict", "options": {
                "units": {"type": "dict", "required": True},
                "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
                "instances": {"type": "list", "elements": "str", "default": []},
                "remove": {"type": "list", "elements": "path", "default": []},
            }},
            "unit_dir": {"type": "path", "default": "/etc/systemd/system"},
        },
        supports_check_mode=True,
    )
    try:
        result = windows(module)
    except (HostFileError, OSError) as exc:
        module.fail_json(msg=f"the window and sign-in units: {exc}", changed=False)
    if module.params["watchdog"] is not None:
        try:
            result["watchdog"] = watchdog(module)
        except (HostFileError, OSError) as exc:
            module.fail_json(msg=f"the watchdog's units: {exc}", changed=result["changed"])
        result["changed"] = result["changed"] or bool(result["watchdog"]["changes"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
