"""Ansible module: a systemd service's packages, files and state on the host, in one round trip.

docker_engine and host_firewall checked their packages, wrote each file, reloaded systemd, enabled and started
their unit and compared the firewall's rules, each a task and so a round trip over SSH (SSH plus a Python start on
the VM) on every deploy. This module does all of it at once from content the role rendered on the controller, and
says what changed, with a diff of each changed file. It never restarts a service: a role that needs a restart on a
change does it through its handler.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: ibgw_host_service
short_description: Check a service's packages, write its files, enable and start it, sync its state
description:
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
"""

import os  # noqa: E402
import stat  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.ibgw_ops.gateway.plugins.module_utils.host_files import HostFileError, read, write_atomically  # noqa: E402

# What sync prints when it changed the running state (apply) or would change it (check, exit 3).
SYNC_CHANGED = {"apply": ("applied", 0), "check": ("differs", 3)}
# Directories the files go into: root's, readable by all (as /etc's own).
DIRECTORY_MODE = 0o755


class Service:
    """The service's files and state, and what this call changed."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.changes: list[str] = []
        self.diffs: list[dict[str, str]] = []

    def run(self, *argv: str) -> tuple[int, str, str]:
        """A command's exit code, stdout and stderr."""
        rc, out, err = self.module.run_command(list(argv))
        return int(rc), str(out), str(err)

    def missing(self) -> list[str]:
        """The packages dpkg does not list as installed."""
        packages = self.params["packages"]
        if not packages:
            return []
        _, out, _ = self.run("dpkg-query", "--show", "--showformat=${db:Status-Status} ${Package}\\n", *packages)
        installed = {line.split()[1] for line in out.splitlines() if line.startswith("installed ")}
        return [name for name in packages if name not in installed]

    def directory(self, path: str) -> None:
        """Create the directory (root, DIRECTORY_MODE) or fix its owner and mode."""
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            info = None
        if info is not None and not stat.S_ISDIR(info.st_mode):
            raise HostFileError(f"{path} is not a directory")
        if info is not None and (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, 0, DIRECTORY_MODE):
            return
        self.changes.append(path)
        if self.module.check_mode:
            return
        try:
            if info is None:
                os.mkdir(path, DIRECTORY_MODE)
            os.chown(path, 0, 0)
            os.chmod(path, DIRECTORY_MODE)
        except OSError as exc:
            raise HostFileError(f"cannot create {path}: {exc.strerror}") from None

    def file(self, path: str, content: bytes, mode: int) -> bool:
        """Write the file (root-owned) when its content, owner or mode differ; whether it did."""
        current = read(path)
        if current is not None and (current.content, current.owner, current.group, current.mode) == (
                content, 0, 0, mode):
            return False
        self.changes.append(path)
        if self.module._diff:
            self.diffs.append({"before_header": path, "after_header": path,
                               "before": current.content.decode("utf-8", "replace") if current else "",
                               "after": content.decode("utf-8", "replace")})
        if not self.module.check_mode:
            write_atomically(path, content, 0, 0, mode)
        return True

    def systemctl(self, *args: str) -> None:
        """Run systemctl (never in check mode) and record it; fail naming the command."""
        self.changes.append(f"systemctl {' '.join(args)}")
        if self.module.check_mode:
            return
        rc, out, err = self.run("systemctl", *args)
        if rc != 0:
            self.module.fail_json(msg=f"systemctl {' '.join(args)} failed: {err.strip() or out.strip()}", rc=rc,
                                  changes=self.changes)

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
            self.changes.append(f"{program} {mode}: {said}")
        elif (said, rc) != ("unchanged", 0):
            self.module.fail_json(msg=f"{program} {mode} exited {rc}: {err.strip() or said}", rc=rc,
                                  stdout=out, stderr=err, changes=self.changes)


def run(module: AnsibleModule) -> dict[str, Any]:
    """Packages, directories, files, then (with every package there) the unit's state and sync."""
    params = module.params
    for entry in params["files"]:
        if not os.path.isabs(str(entry["dest"])):
            module.fail_json(msg=f"service {params['service']}: files[].dest must be an absolute path "
                                 f"(got '{entry['dest']}')")
    service = Service(module)
    missing = service.missing()
    for path in params["directories"]:
        service.directory(path)
    reload = False
    for entry in params["files"]:
        written = service.file(str(entry["dest"]), str(entry["content"]).encode(), int(str(entry["mode"]), 8))
        reload = reload or (written and bool(entry.get("reload", False)))
    if not missing:
        service.ensure_running(reload)
        program = params["sync"]
        if program and not (module.check_mode and program in service.changes):
            service.sync(program)
    result: dict[str, Any] = {"changed": bool(service.changes), "changes": service.changes, "missing": missing}
    if module._diff:
        result["diff"] = service.diffs
    return result


def main() -> None:
    """Apply the service's files and state; fail naming the path or the command."""
    module = AnsibleModule(
        argument_spec={
            "service": {"type": "str", "required": True},
            "packages": {"type": "list", "elements": "str", "default": []},
            "directories": {"type": "list", "elements": "path", "default": []},
            "files": {"type": "list", "elements": "dict", "required": True},
            "sync": {"type": "path"},
        },
        supports_check_mode=True,
    )
    try:
        result = run(module)
    except HostFileError as exc:
        module.fail_json(msg=f"service {module.params['service']}: {exc}", changed=False)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
