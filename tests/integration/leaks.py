"""Looking for a secret where it must not be: command lines, process environments and files, on the controller and
on a lab VM, while verbs run (watchers polling every ``INTERVAL``) and afterwards (``files_with``, ``lines_with``).

A watcher's ``leaks`` maps each place the secret showed up to its ``phase`` then (the test sets it: the verb)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support.lab import Lab

INTERVAL = 0.1
NUL = b"\0"
# One SSH session polls the VM: command lines, environments, and the files Ansible stages in its remote temporary
# directory. A bound (about 15 minutes) ends the loop should the session outlive the test.
VM_POLL = (f"i=0; while [ $i -lt 9000 ]; do i=$((i+1)); echo '@@ ps'; ps -ww -eo args; echo '@@ environ'; "
           f"cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'; echo; echo '@@ ansible tmp'; "
           f"find /root/.ansible/tmp -type f -exec grep -aH '' {{}} + 2>/dev/null; echo; echo '@@ end'; "
           f"sleep {INTERVAL}; done")


def processes() -> str:
    """Every process's command line, one per line, at full width."""
    return subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True, check=True).stdout


def lines_with(secret: str, text: str) -> list[str]:
    return [line for line in text.splitlines() if secret in line]


def _regular_files(*roots: Path) -> Iterator[Path]:
    """Every regular file under ``roots``; directories that vanish meanwhile are skipped."""
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in names:
                path = Path(folder, name)
                try:
                    if stat.S_ISREG(path.lstat().st_mode):
                        yield path
                except OSError:
                    continue


def files_with(secret: str, *roots: Path) -> list[str]:
    """The regular files under ``roots`` whose path or content holds ``secret``."""
    found = []
    for path in _regular_files(*roots):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if secret.encode() in data or secret in str(path):
            found.append(str(path))
    return found


def _descendants(root: int) -> list[int]:
    """Process ids of ``root``'s children, their children, and so on (this test's own processes only)."""
    parents: dict[int, int] = {}
    # Not Path.glob: its existence check lets ESRCH (ProcessLookupError) through for a process exiting meanwhile.
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            parents[int(name)] = int(Path("/proc", name, "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = [], [root]
    while frontier:
        current = frontier.pop()
        children = [pid for pid, parent in parents.items() if parent == current]
        found += children
        frontier += children
    return found


class Watcher(threading.Thread):
    """On the controller until stopped: every command line, the environment of this test's own processes (the CLI,
    ansible-playbook, ssh) and every file under the runner's directory ``runs`` and ``others``. Keeps where the
    secret showed up and proof that it looked at live runs."""

    def __init__(self, secret: str, runs: Path, *others: Path) -> None:
        super().__init__(daemon=True)
        self.secret, self.runs, self.others = secret, runs, others
        self.phase = ""
        self.leaks: dict[str, str] = {}
        self.errors: list[str] = []
        self.saw_playbook = self.saw_run_file = False
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self._look()
            except Exception as exc:  # a watcher that died silently would pass vacuously
                self.errors.append(repr(exc))
            time.sleep(INTERVAL)

    def finish(self) -> None:
        self.stop.set()
        self.join()

    def _look(self) -> None:
        snapshot = processes()
        self.saw_playbook |= "ansible-playbook" in snapshot
        for line in lines_with(self.secret, snapshot):
            self.leaks.setdefault(f"controller ps: {line}", self.phase)
        for pid in _descendants(os.getpid()):
            try:
                environ, command = (Path(f"/proc/{pid}/{name}").read_bytes() for name in ("environ", "cmdline"))
            except OSError:
                continue
            if self.secret.encode() in environ:
                self.leaks.setdefault(f"controller environment of {command.replace(NUL, b' ').decode()!r}",
                                      self.phase)
        for path in _regular_files(self.runs, *self.others):
            try:
                data = path.read_bytes()
            except OSError:
                continue
            self.saw_run_file |= bool(data) and path.is_relative_to(self.runs)
            if self.secret.encode() in data or self.secret in str(path):
                self.leaks.setdefault(f"controller file {path}", self.phase)


class VmWatcher(threading.Thread):
    """On a lab VM over one SSH session until stopped: every process's command line and environment, and the files in
    Ansible's remote temporary directory. Keeps where the secret showed up, how many snapshots it read, and every
    command line it saw (proof that it looked at live runs)."""

    def __init__(self, lab: Lab, secret: str) -> None:
        super().__init__(daemon=True)
        self.secret = secret
        self.phase = ""
        self.leaks: dict[str, str] = {}
        self.commands: set[str] = set()
        self.snapshots = 0
        self.first = threading.Event()
        self.ssh = subprocess.Popen([sys.executable, "-m", "ibgw_ops", "lab", "ssh", "--", VM_POLL], env=lab.env,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def run(self) -> None:
        assert self.ssh.stdout is not None
        section = ""
        for raw in self.ssh.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            if line.startswith("@@ "):
                section = line[3:]
                if section == "end":
                    self.snapshots += 1
                    self.first.set()
                continue
            if section == "ps":
                self.commands.add(line)
            if self.secret in line:
                self.leaks.setdefault(f"VM {section}: {line}", self.phase)

    def start(self) -> None:
        super().start()
        assert self.first.wait(30), "the VM watcher read no snapshot in 30 s"

    def finish(self) -> None:
        self.ssh.terminate()
        self.ssh.wait(timeout=10)
        self.join(timeout=10)
