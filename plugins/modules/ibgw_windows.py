"""Ansible module: the host's paper-window and weekly sign-in timers as systemd units, in one round trip.

The role renders every window's and sign-in's units on the controller (filters ib_gateway_window_units and
ib_gateway_signin_units); this module makes the host's units under the given prefixes exactly those: writes what
differs, disables and removes what is no longer wanted (a window or an instance gone from the inventory), reloads
systemd once, and keeps each timer enabled and active. Both kinds in one call: each call is a round trip.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: ibgw_windows
short_description: Make the host's systemd units under the prefixes exactly the given ones, timers enabled and active
description:
  - >-
    Unit files are root-owned, 0644, in unit_dir. A changed timer is restarted so that systemd computes its next
    elapse from the new calendar. Check mode reports what would change, writing nothing.
options:
  units: {type: dict, required: true, description: 'File name -> content of every wanted unit.'}
  prefixes:
    type: list
    elements: str
    default: [ibgw-window-]
    description: The prefixes that mark the units this module owns; every wanted unit starts with one of them.
  unit_dir: {type: path, default: /etc/systemd/system, description: 'Where the unit files go.'}
"""

import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.ibgw_ops.gateway.plugins.module_utils.host_files import (  # noqa: E402
    HostFileError,
    differs,
    write_atomically,
)


def main() -> None:
    """Write, remove, reload, enable; report the unit files changed and the timers (re)started."""
    module = AnsibleModule(
        argument_spec={
            "units": {"type": "dict", "required": True},
            "prefixes": {"type": "list", "elements": "str", "default": ["ibgw-window-"]},
            "unit_dir": {"type": "path", "default": "/etc/systemd/system"},
        },
        supports_check_mode=True,
    )
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
    try:
        written = [name for name, content in sorted(units.items())
                   if differs(os.path.join(directory, name), content.encode(), 0, 0, 0o644)]
    except HostFileError as exc:
        module.fail_json(msg=str(exc))
    removed = [name for name in present if name not in units]
    timers = sorted(name for name in units if name.endswith(".timer"))
    idle = [name for name in timers if name not in written and not _running(module, name)]
    changed = bool(written or removed or idle)
    if module.check_mode or not changed:
        module.exit_json(changed=changed, written=written, removed=removed, started=idle)
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
    module.exit_json(changed=True, written=written, removed=removed, started=started)


def _running(module: AnsibleModule, timer: str) -> bool:
    enabled = module.run_command(["systemctl", "is-enabled", "--quiet", timer])[0] == 0
    return enabled and bool(module.run_command(["systemctl", "is-active", "--quiet", timer])[0] == 0)


def _systemctl(module: AnsibleModule, *args: str) -> None:
    rc, out, err = module.run_command(["systemctl", *args])
    if rc != 0:
        module.fail_json(msg=f"systemctl {' '.join(args)} failed: {err.strip() or out.strip()}", rc=rc)


if __name__ == "__main__":
    main()
