"""Ansible module: a systemd service's packages, files and state on the host, in one round trip.

docker_engine and host_firewall checked their packages, wrote each file, reloaded systemd, enabled and started
their unit and compared the firewall's rules, each a task and so a round trip over SSH (SSH plus a Python start on
the VM) on every deploy. This module does all of it at once from content the role rendered on the controller, and
says what changed, with a diff of each changed file. It never restarts a service: a role that needs a restart on a
change does it through its handler. It also reads the host's release, so that a role whose packages depend on it
needs no fact gathering (another round trip, and the heaviest module Ansible ships to the host).
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: ibgw_host_service
short_description: Check a service's packages, write its files, enable and start it, sync its state
description:
  - >-
    With releases, first reads the host's release from os_release and takes that release's packages; a release
    not among them fails with unsupported before anything is changed.
  - >-
    Asks dpkg whether every one of packages is installed. Those missing are returned in missing, and then the
    service and sync are left alone: the role installs them (which starts the service) and enables it.
  - >-
    Creates each of directories (root, 0755) and writes each of files (root-owned) when its content, owner or
    mode differ. When a file marked reload changed (a systemd unit), reloads systemd.
  - >-
    Enables the service and starts it when it is not enabled or not active; never restarts it.
  - >-
    Then runs sync with the argument apply (check in check mode): a program that makes the running state match the
    files. It prints applied, or differs with exit 3 in check mode, when it changed or would change something,
    and unchanged (exit 0) otherwise; any other exit fails with what it wrote on stderr. In check mode it is not
    run when this call would change the program itself.
  - >-
    Check mode reports what would change, changing nothing. With --diff, each changed file's old and new content.
options:
  service: {type: str, required: true, description: 'The systemd unit.'}
  packages: {type: list, elements: str, default: [], description: 'Packages dpkg must have.'}
  releases:
    type: dict
    description: >-
      Instead of packages: "<os-release ID> <VERSION_ID's major number>" (e.g. "debian 13") -> the packages dpkg
      must have on that release. Every other release is refused.
  unsupported:
    type: str
    description: >-
      With releases, the failure message for a release not among them; {release} stands for the host's (e.g.
      "Debian 12.1").
  os_release: {type: path, default: /etc/os-release, description: 'The file the release is read from.'}
  directories: {type: list, elements: path, default: [], description: 'Directories the files go into.'}
  files:
    type: list
    elements: dict
    required: true
    description: "Each {dest: an absolute path, content, mode: octal string, reload: bool (a systemd unit)}."
  sync: {type: path, description: 'The program that makes the running state match the files.'}
"""

RETURN = r"""
changes: {type: list, description: 'The paths and actions that changed (or would in check mode).'}
missing: {type: list, description: 'The packages dpkg does not have; the service was left alone.'}
release:
  type: dict
  description: >-
    With releases: id, version_id, version (Debian's point release), codename, and when a package is missing the
    architecture (dpkg's name, for a package repository).
"""

import os  # noqa: E402
import shlex  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.ibgw_ops.gateway.plugins.module_utils.host_files import Changes, finish  # noqa: E402

# What sync prints when it changed the running state (apply) or would change it (check, exit 3).
SYNC_CHANGED = {"apply": ("applied", 0), "check": ("differs", 3)}
# Directories the files go into: root's, readable by all (as /etc's own).
DIRECTORY_MODE = 0o755


class Service:
    """The service's files and state, and what this call changed."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.host = Changes(module)

    def run(self, *argv: str) -> tuple[int, str, str]:
        """A command's exit code, stdout and stderr."""
        rc, out, err = self.module.run_command(list(argv))
        return int(rc), str(out), str(err)

    def missing(self, packages: list[str]) -> list[str]:
        """The packages dpkg does not list as installed."""
        if not packages:
            return []
        _, out, _ = self.run("dpkg-query", "--show", "--showformat=${db:Status-Status} ${Package}\\n", *packages)
        installed = {line.split()[1] for line in out.splitlines() if line.startswith("installed ")}
        return [name for name in packages if name not in installed]

    def systemctl(self, *args: str) -> None:
        """Run systemctl (never in check mode) and record it; fail naming the command."""
        self.host.paths.append(f"systemctl {' '.join(args)}")
        if self.module.check_mode:
            return
        rc, out, err = self.run("systemctl", *args)
        if rc != 0:
            self.module.fail_json(msg=f"systemctl {' '.join(args)} failed: {err.strip() or out.strip()}", rc=rc,
                                  changes=self.host.paths)

    def ensure_running(self, reload: bool) -> None:
        """Reload systemd when a unit changed; enable and start the service when it is not."""
        unit = self.params["service"]
        if reload:
            self.systemctl("daemon-reload")
        if self.run("systemctl", "is-enabled", "--quiet", unit)[0] != 0:
            self.systemctl("enable", unit)
        if self.run("systemctl", "is-active", "--quiet", unit)[0] != 0:
            self.systemctl("start", unit)

    def sync(self, program: str) -> None:
        """Make the running state match the files (compare only, in check mode)."""
        mode = "check" if self.module.check_mode else "apply"
        rc, out, err = self.run(program, mode)
        said = out.strip()
        if (said, rc) == SYNC_CHANGED[mode]:
            self.host.paths.append(f"{program} {mode}: {said}")
        elif (said, rc) != ("unchanged", 0):
            self.module.fail_json(msg=f"{program} {mode} exited {rc}: {err.strip() or said}", rc=rc,
                                  stdout=out, stderr=err, changes=self.host.paths)


def read_release(path: str) -> tuple[dict[str, str], str]:
    """The host's release and its name for a message ("Debian 12.1").

    Debian's point release (/etc/debian_version, next to os-release) is its version, as Ansible's facts give it.
    """
    fields: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                key, sep, value = line.strip().partition("=")
                if sep and not key.startswith("#"):
                    fields[key] = "".join(shlex.split(value)) if value else ""
    except OSError:
        pass
    version = fields.get("VERSION_ID", "")
    point = os.path.join(os.path.dirname(path), "debian_version")
    if fields.get("ID") == "debian" and os.path.isfile(point):
        with open(point, encoding="utf-8") as text:
            found = text.read().strip()
        version = found if found.split(".")[0] == version else version
    name = f"{(fields.get('NAME') or fields.get('ID') or 'unknown').split()[0]} {version}".strip()
    return {"id": fields.get("ID", "unknown"), "version_id": fields.get("VERSION_ID", ""), "version": version,
            "codename": fields.get("VERSION_CODENAME", "")}, name


def packages_for(module: AnsibleModule) -> tuple[list[str], dict[str, str] | None]:
    """The packages dpkg must have: the given ones, or the host's release's (refused when it has none)."""
    params = module.params
    if not params["releases"]:
        return list(params["packages"]), None
    release, name = read_release(params["os_release"])
    key = f"{release['id']} {release['version_id'].split('.')[0]}"
    if key not in params["releases"]:
        module.fail_json(msg=str(params["unsupported"]).replace("{release}", name), release=release)
    return [str(package) for package in params["releases"][key]], release


def run(module: AnsibleModule) -> dict[str, Any]:
    """The release, packages, directories, files, then (with every package there) the unit's state and sync."""
    params = module.params
    for entry in params["files"]:
        if not os.path.isabs(str(entry["dest"])):
            module.fail_json(msg=f"service {params['service']}: files[].dest must be an absolute path "
                                 f"(got '{entry['dest']}')")
    packages, release = packages_for(module)
    service = Service(module)
    missing = service.missing(packages)
    if release is not None and missing:
        release["architecture"] = service.run("dpkg", "--print-architecture")[1].strip()
    for path in params["directories"]:
        service.host.directory(path, 0, DIRECTORY_MODE)
    reload = False
    for entry in params["files"]:
        written = service.host.file(str(entry["dest"]), str(entry["content"]).encode(), 0, int(str(entry["mode"]), 8))
        reload = reload or (written and bool(entry.get("reload", False)))
    if not missing:
        service.ensure_running(reload)
        program = params["sync"]
        if program and not (module.check_mode and program in service.host.paths):
            service.sync(program)
    return service.host.result(missing=missing, **({} if release is None else {"release": release}))


def main() -> None:
    """Apply the service's files and state; fail naming the path or the command."""
    module = AnsibleModule(
        argument_spec={
            "service": {"type": "str", "required": True},
            "packages": {"type": "list", "elements": "str", "default": []},
            "releases": {"type": "dict"},
            "unsupported": {"type": "str"},
            "os_release": {"type": "path", "default": "/etc/os-release"},
            "directories": {"type": "list", "elements": "path", "default": []},
            "files": {"type": "list", "elements": "dict", "required": True},
            "sync": {"type": "path"},
        },
        mutually_exclusive=[("packages", "releases")],
        required_by={"releases": ("unsupported",)},
        supports_check_mode=True,
    )
    finish(module, lambda: run(module), f"service {module.params['service']}")


if __name__ == "__main__":
    main()
