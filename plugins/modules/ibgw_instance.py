"""Ansible module: one gateway instance's compose project and settings on the host, in one round trip.

A deploy touched each instance with a dozen tasks (directories, four templates, the time zone in jts.ini, the VNC
password file, the restart-pending marker, the container's state), each a round trip over SSH. This module does
them all at once from content the role rendered on the controller, and says which files changed, with a diff.
It never starts, stops or recreates a container: when a running gateway's configuration changed, it writes the
restart-pending marker, and the next start or restart applies the change.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: ibgw_instance
short_description: Write one gateway instance's directories and files; mark a pending restart
description:
  - >-
    Creates root (root, 0755) and in it the instance's directory (root, 0750) with secrets/ and settings/ (uid,
    0700); writes each of files (root-owned) when its content or mode differ, and the programs into lib/ibgw_on_host/
    (root, 0755 and 0644): the VM-side code as a package for what systemd runs on the host.
  - >-
    Sets TimeZone in the [Logon] section of settings/jts.ini when that file exists (the image writes TIME_ZONE into
    jts.ini only when it creates it); a missing jts.ini is left for the gateway to write at its first start.
  - >-
    Removes secrets/vnc_password unless vnc_enabled.
  - >-
    A running container whose configuration changed (any file whose restart is true, jts.ini, the VNC password
    file) gets the restart-pending marker; a stopped one loses it (its next start applies everything). Secret
    files are written by ibgw_secret_file after this module has created their directory.
  - >-
    Check mode reports what would change, writing nothing. With --diff, each changed file's old and new content.
options:
  name: {type: str, required: true, description: 'The instance, for messages.'}
  root: {type: path, required: true, description: 'The parent directory of all instances.'}
  uid: {type: int, required: true, description: 'The gateway''s user and group id inside the container.'}
  container: {type: str, required: true, description: 'The instance''s container name.'}
  files:
    type: list
    elements: dict
    required: true
    description: "Each {dest: a name in the instance directory, content, mode: octal string, restart: bool}."
  programs:
    type: dict
    default: {}
    description: >-
      File name -> content of the VM-side modules, written into lib/ibgw_on_host/ with an empty __init__.py (run as
      python3 -m ibgw_on_host.<module>, PYTHONPATH=<instance>/lib); a change needs no restart.
  time_zone: {type: str, required: true, description: 'The TimeZone value for jts.ini.'}
  vnc_enabled: {type: bool, required: true, description: 'VNC is on; false removes secrets/vnc_password.'}
  pending_text: {type: str, required: true, description: 'The restart-pending marker''s text.'}
"""

RETURN = r"""
changes: {type: list, description: 'The paths that changed (or would in check mode).'}
running: {type: bool, description: 'The container is running.'}
restart_pending: {type: bool, description: 'The container runs with an older configuration.'}
container: {type: str, description: 'The container''s status, "absent" when there is none.'}
image: {type: str, description: 'The image reference the container was created from.'}
image_id: {type: str, description: 'The image id the container runs.'}
image_digest: {type: str, description: 'The image''s registry digest, "" when it came from no registry.'}
"""

import os  # noqa: E402
import re  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.ibgw_ops.gateway.plugins.module_utils.gateway_container import inspect  # noqa: E402
from ansible_collections.ibgw_ops.gateway.plugins.module_utils.host_files import (  # noqa: E402
    Changes,
    HostFileError,
    finish,
    read,
)

MARKER = "restart-pending"
# Where the VM-side code goes, as a package: python3 -m ibgw_on_host.<module> with PYTHONPATH=<instance>/lib.
PROGRAMS = ("lib", "ibgw_on_host")


class Instance:
    """The instance's paths and what this run changed there."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.dir = os.path.join(self.params["root"], self.params["name"])
        self.host = Changes(module)
        self.restart_changes: list[str] = []

    def path(self, *parts: str) -> str:
        """A path inside the instance directory."""
        return os.path.join(self.dir, *parts)

    def file(self, path: str, content: bytes, owner: int, mode: int, *, restart: bool) -> None:
        """Write the file when its content, owner or mode differ; a change that needs a restart is kept apart."""
        if self.host.file(path, content, owner, mode) and restart:
            self.restart_changes.append(path)

    def time_zone(self, time_zone: str) -> None:
        """TimeZone=<zone> in jts.ini's [Logon] section, as the image writes it into a new jts.ini."""
        path = self.path("settings", "jts.ini")
        current = read(path)
        if current is None:
            return
        lines = current.content.decode("utf-8", "replace").splitlines(keepends=True)
        wanted = f"TimeZone={time_zone}\n"
        zone_lines = [i for i, line in enumerate(lines) if line.startswith("TimeZone=")]
        logon_lines = [i for i, line in enumerate(lines) if re.match(r"^\[Logon\]", line)]
        if zone_lines:
            lines[zone_lines[-1]] = wanted
        elif logon_lines:
            lines.insert(logon_lines[-1] + 1, wanted)
        else:
            lines.append(wanted if not lines or lines[-1].endswith("\n") else "\n" + wanted)
        uid = self.params["uid"]
        self.file(path, "".join(lines).encode(), uid, current.mode, restart=True)

    def remove(self, path: str, *, restart: bool) -> None:
        """Remove the file if it exists."""
        if not os.path.lexists(path):
            return
        self.host.paths.append(path)
        if restart:
            self.restart_changes.append(path)
        if not self.module.check_mode:
            try:
                os.unlink(path)
            except OSError as exc:
                raise HostFileError(f"cannot remove {path}: {exc.strerror}") from None


def run(module: AnsibleModule) -> dict[str, Any]:
    """Directories, files, jts.ini, the VNC password file, then the marker as the container's state requires."""
    params = module.params
    for name in (str(entry["dest"]) for entry in params["files"]):
        if os.path.basename(name) != name or name in {"", ".", "..", MARKER}:
            module.fail_json(msg=f"gateway {params['name']}: files[].dest must be a plain file name (got '{name}')")
    instance = Instance(module)
    uid = params["uid"]
    instance.host.directory(params["root"], 0, 0o755)
    instance.host.directory(instance.dir, 0, 0o750)
    instance.host.directory(instance.path("secrets"), uid, 0o700)
    instance.host.directory(instance.path("settings"), uid, 0o700)
    for entry in params["files"]:
        instance.file(instance.path(str(entry["dest"])), str(entry["content"]).encode(), 0,
                      int(str(entry["mode"]), 8), restart=bool(entry.get("restart", True)))
    _programs(instance, params["programs"])
    instance.time_zone(params["time_zone"])
    if not params["vnc_enabled"]:
        instance.remove(instance.path("secrets", "vnc_password"), restart=True)
    found = inspect(module.run_command, module.get_bin_path("docker"), params["container"])
    marker = instance.path(MARKER)
    if found["running"] and instance.restart_changes:
        instance.file(marker, params["pending_text"].encode(), 0, 0o644, restart=False)
    elif not found["running"]:
        instance.remove(marker, restart=False)
    pending = found["running"] and (marker in instance.host.paths or os.path.exists(marker))
    return instance.host.result(running=found["running"], restart_pending=pending,
                                **{key: found[key] for key in ("container", "image", "image_id", "image_digest")})


def _programs(instance: Instance, programs: dict[str, str]) -> None:
    if not programs:
        return
    for name in programs:
        if os.path.basename(name) != name or not name.endswith(".py") or name == "__init__.py":
            instance.module.fail_json(msg=f"programs: '{name}' must be a module's file name (*.py)")
    instance.host.directory(instance.path(PROGRAMS[0]), 0, 0o755)
    instance.host.directory(instance.path(*PROGRAMS), 0, 0o755)
    for name, content in {**programs, "__init__.py": ""}.items():
        instance.file(instance.path(*PROGRAMS, name), content.encode(), 0, 0o644, restart=False)


def main() -> None:
    """Apply the instance's files; fail naming the path that could not be written."""
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "root": {"type": "path", "required": True},
            "uid": {"type": "int", "required": True},
            "container": {"type": "str", "required": True},
            "files": {"type": "list", "elements": "dict", "required": True},
            "programs": {"type": "dict", "default": {}},
            "time_zone": {"type": "str", "required": True},
            "vnc_enabled": {"type": "bool", "required": True},
            "pending_text": {"type": "str", "required": True},
        },
        supports_check_mode=True,
    )
    finish(module, lambda: run(module), f"gateway {module.params['name']}")


if __name__ == "__main__":
    main()
