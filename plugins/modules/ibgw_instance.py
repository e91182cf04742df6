"""Ansible module: every gateway instance's compose project and settings on a host, in one round trip.

A deploy touched each instance with a dozen tasks (directories, four templates, the time zone in jts.ini, the VNC
password file, the restart-pending marker, the container's state), each a round trip over SSH, and checked the
images with another. This module does it all at once for every instance of the host, from content its action
plugin rendered on the controller, and says which files changed, with a diff. It never starts, stops or recreates a
container: when a running gateway's configuration changed, it writes the restart-pending marker, and the next start
or restart applies the change.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: ibgw_instance
short_description: Write every gateway instance's directories and files on a host; mark pending restarts
description:
  - >-
    For each of instances: creates root (root, 0755) and in it the instance's directory (root, 0750) with secrets/
    and settings/ (uid, 0700); writes each of its files (root-owned) when its content or mode differ, and the
    programs into lib/ibgw_on_host/ (root, 0755 and 0644): the VM-side code as a package for what systemd runs on
    the host.
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
    First checks that each of images is present: when one is missing, nothing is written (missing_images says
    which; the role loads or pulls them and calls the module again), so that a failed pull leaves the old files.
  - >-
    Check mode reports what would change, writing nothing (with images missing too). With --diff, each changed
    file's old and new content.
  - >-
    Its action plugin renders each instance's files on the controller from the role's templates.
options:
  root: {type: path, required: true, description: 'The parent directory of all instances.'}
  uid: {type: int, required: true, description: 'The gateway''s user and group id inside the container.'}
  instances:
    type: list
    elements: dict
    required: true
    description: >-
      Each {name, container: its container's name, time_zone: the TimeZone value for jts.ini, vnc_enabled: VNC is
      on (false removes secrets/vnc_password), files: each {dest: a name in the instance directory, content, mode:
      octal string, restart: bool}}.
  programs:
    type: dict
    default: {}
    description: >-
      File name -> content of the VM-side modules, written into each instance's lib/ibgw_on_host/ with an empty
      __init__.py (run as python3 -m ibgw_on_host.<module>, PYTHONPATH=<instance>/lib); a change needs no restart.
  images: {type: list, elements: str, default: [], description: 'The image references that must be present.'}
  pending_text: {type: str, required: true, description: 'The restart-pending marker''s text.'}
"""

RETURN = r"""
changes: {type: list, description: 'The paths that changed (or would in check mode), every instance''s.'}
missing_images: {type: list, description: 'The images that are not present (nothing written unless check mode).'}
instances:
  type: list
  description: >-
    Per instance: name, changes, running (the container is running), restart_pending (it runs with an older
    configuration), container (its status, "absent" when there is none), image (the reference the container was
    created from), image_id, image_digest (the registry digest, "" when it came from no registry).
"""

import os  # noqa: E402
import re  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.ibgw_ops.gateway.plugins.module_utils.gateway_container import inspect  # noqa: E402
from ansible_collections.ibgw_ops.gateway.plugins.module_utils.host_files import (  # noqa: E402
    Changes,
    HostFileError,
    read,
)

MARKER = "restart-pending"
# Where the VM-side code goes, as a package: python3 -m ibgw_on_host.<module> with PYTHONPATH=<instance>/lib.
PROGRAMS = ("lib", "ibgw_on_host")


class Instance:
    """One instance's paths and what this run changed there."""

    def __init__(self, module: AnsibleModule, spec: dict[str, Any]) -> None:
        self.module = module
        self.spec = spec
        self.uid = int(module.params["uid"])
        self.dir = os.path.join(module.params["root"], str(spec["name"]))
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
        self.file(path, "".join(lines).encode(), self.uid, current.mode, restart=True)

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

    def apply(self) -> dict[str, Any]:
        """Directories, files, jts.ini, the VNC password file, then the marker as the container's state requires."""
        spec, params = self.spec, self.module.params
        self.host.directory(params["root"], 0, 0o755)
        self.host.directory(self.dir, 0, 0o750)
        self.host.directory(self.path("secrets"), self.uid, 0o700)
        self.host.directory(self.path("settings"), self.uid, 0o700)
        for entry in spec["files"]:
            self.file(self.path(str(entry["dest"])), str(entry["content"]).encode(), 0,
                      int(str(entry["mode"]), 8), restart=bool(entry.get("restart", True)))
        _programs(self, params["programs"])
        self.time_zone(str(spec["time_zone"]))
        if not spec["vnc_enabled"]:
            self.remove(self.path("secrets", "vnc_password"), restart=True)
        found = inspect(self.module.run_command, self.module.get_bin_path("docker"), str(spec["container"]))
        marker = self.path(MARKER)
        if found["running"] and self.restart_changes:
            self.file(marker, params["pending_text"].encode(), 0, 0o644, restart=False)
        elif not found["running"]:
            self.remove(marker, restart=False)
        pending = found["running"] and (marker in self.host.paths or os.path.exists(marker))
        return {"name": spec["name"], **self.host.result(running=found["running"], restart_pending=pending,
                **{key: found[key] for key in ("container", "image", "image_id", "image_digest")})}


def run(module: AnsibleModule) -> dict[str, Any]:
    """Every instance's files once its images are present; the images missing, nothing written."""
    params = module.params
    for spec in params["instances"]:
        if os.path.basename(str(spec["name"])) != spec["name"] or spec["name"] in {"", ".", ".."}:
            module.fail_json(msg=f"instances[].name must be a plain directory name (got '{spec['name']}')")
        for name in (str(entry["dest"]) for entry in spec["files"]):
            if os.path.basename(name) != name or name in {"", ".", "..", MARKER}:
                module.fail_json(msg=f"gateway {spec['name']}: files[].dest must be a plain file name (got '{name}')")
    missing = _missing(module, params["images"])
    if missing and not module.check_mode:
        return {"changed": False, "changes": [], "instances": [], "missing_images": missing}
    results: list[dict[str, Any]] = []
    for spec in params["instances"]:
        try:
            results.append(Instance(module, spec).apply())
        except HostFileError as exc:
            module.fail_json(msg=f"gateway {spec['name']}: {exc}",
                             changed=any(result["changed"] for result in results))
    found: dict[str, Any] = {"changed": any(result["changed"] for result in results),
                             "changes": [path for result in results for path in result["changes"]],
                             "instances": results, "missing_images": missing}
    if module._diff:
        found["diff"] = [diff for result in results for diff in result.pop("diff")]
    return found


def _missing(module: AnsibleModule, images: list[str]) -> list[str]:
    """The images ``docker image inspect`` does not find (every one when there is no docker)."""
    docker = module.get_bin_path("docker")
    if docker is None:
        return list(images)
    return [image for image in images if module.run_command([docker, "image", "inspect", "--format", "{{.Id}}",
                                                                       image])[0] != 0]


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
    """Apply the instances' files; fail naming the gateway and the path that could not be written."""
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "required": True},
            "uid": {"type": "int", "required": True},
            "instances": {"type": "list", "elements": "dict", "required": True},
            "programs": {"type": "dict", "default": {}},
            "images": {"type": "list", "elements": "str", "default": []},
            "pending_text": {"type": "str", "required": True},
        },
        supports_check_mode=True,
    )
    module.exit_json(**run(module))


if __name__ == "__main__":
    main()
