"""Files the role owns on the host, compared and replaced the same way by every module that writes one.

A file is read without following a symlink and must be a regular file; a new version goes into a temporary file in
the same directory, owned and with its final mode before any byte is written, and is renamed over the old one.
``Changes`` is the modules' one way to write directories and files, honour check mode and --diff, and say what
changed; ``finish`` their one ending.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, NoReturn, Protocol

MAX_SIZE = 1 << 20  # every file the role writes is far smaller


class HostFileError(Exception):
    """A file that cannot be read or written; the message names the path, never its content."""


class Module(Protocol):
    """What ``Changes`` and ``finish`` use of an AnsibleModule (the VM's programs import this file: no Ansible here)."""

    check_mode: bool
    _diff: bool

    def fail_json(self, msg: str, **kwargs: Any) -> NoReturn:
        """Fail the module with ``msg``."""

    def exit_json(self, **kwargs: Any) -> NoReturn:
        """Exit the module with its result."""


class Current(NamedTuple):
    """What a file holds now."""

    content: bytes
    owner: int
    group: int
    mode: int


def read(path: str) -> Current | None:
    """The file's content and metadata, None when it does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise HostFileError(f"cannot read {path}: {exc.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise HostFileError(f"{path} is not a regular file")
    with os.fdopen(fd, "rb") as handle:
        return Current(handle.read(MAX_SIZE), info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode))


def differs(path: str, content: bytes, owner: int, group: int, mode: int) -> bool:
    """True when the file is missing or its content, owner, group or mode differ (compared in constant time)."""
    current = read(path)
    return current is None or not (
        (current.owner, current.group, current.mode) == (owner, group, mode)
        and hmac.compare_digest(current.content, content))


def write_atomically(path: str, content: bytes, owner: int, group: int, mode: int) -> None:
    """Replace the file in one rename, then make the rename durable."""
    directory = os.path.dirname(path) or "."
    try:
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.")
    except OSError as exc:
        raise HostFileError(f"cannot create a file in {directory}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchown(handle.fileno(), owner, group)
            os.fchmod(handle.fileno(), mode)
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise HostFileError(f"cannot write {path}: {exc.strerror}") from None
    with contextlib.suppress(OSError):
        directory_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)


def text(path: str) -> str:
    """The file's text, "" when it is missing or unreadable (a file the role writes only when a setting is set)."""
    try:
        with open(path) as source:
            return source.read()
    except OSError:
        return ""


def json_object(path: str) -> dict[str, Any]:
    """A JSON object kept in a file; {} when it is missing, unreadable or not an object."""
    try:
        found = json.loads(text(path) or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def keep_json(path: str, content: Mapping[str, Any]) -> None:
    """State of the VM's own programs: JSON written atomically, mode 0600, owned by whoever runs them (root)."""
    write_atomically(path, json.dumps(content, sort_keys=True).encode(), os.getuid(), os.getgid(), 0o600)


class Changes:
    """What a module changed on the host (in check mode: would change), with each changed file's diff for --diff."""

    def __init__(self, module: Module) -> None:
        self.check_mode = module.check_mode
        self.diff = module._diff
        self.paths: list[str] = []
        self.diffs: list[dict[str, str]] = []

    def directory(self, path: str, owner: int, mode: int) -> bool:
        """Create the directory or fix its owner (user and group) and mode; whether it did."""
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            info = None
        if info is not None and not stat.S_ISDIR(info.st_mode):
            raise HostFileError(f"{path} is not a directory")
        if info is not None and (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (owner, owner, mode):
            return False
        self.paths.append(path)
        if self.check_mode:
            return True
        try:
            if info is None:
                os.mkdir(path, mode)
            os.chown(path, owner, owner)
            os.chmod(path, mode)
        except OSError as exc:
            raise HostFileError(f"cannot create {path}: {exc.strerror}") from None
        return True

    def file(self, path: str, content: bytes, owner: int, mode: int) -> bool:
        """Write the file (owner: user and group) when its content, owner or mode differ; whether it did."""
        current = read(path)
        if current is not None and (current.content, current.owner, current.group, current.mode) == (
                content, owner, owner, mode):
            return False
        self.paths.append(path)
        if self.diff:
            self.diffs.append({"before_header": path, "after_header": path,
                               "before": current.content.decode("utf-8", "replace") if current else "",
                               "after": content.decode("utf-8", "replace")})
        if not self.check_mode:
            write_atomically(path, content, owner, owner, mode)
        return True

    def result(self, **fields: Any) -> dict[str, Any]:
        """The module's result: changed, changes, the diffs with --diff, and its own fields."""
        found: dict[str, Any] = {"changed": bool(self.paths), "changes": self.paths, **fields}
        if self.diff:
            found["diff"] = self.diffs
        return found


def finish(module: Module, run: Callable[[], dict[str, Any]], subject: str) -> NoReturn:
    """Exit with ``run``'s result; a file it could not read or write fails the module, naming ``subject``."""
    try:
        result = run()
    except HostFileError as exc:
        module.fail_json(msg=f"{subject}: {exc}", changed=False)
    module.exit_json(**result)
