"""The one place that runs a playbook through ansible-runner (ansible-navigator style).

Each run gets a private directory (0700) under the state directory that is removed afterwards; events and facts
stay in memory; extra variables and the environment never carry a secret (credentials live in vault-encrypted
inventory or in the credentials file the role reads on the controller, the vault password goes over the runner's
pty only); host keys are checked. On a terminal the operator sees one line per task result; elsewhere (cron) a
successful run prints nothing and a failed one a summary per host.
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ibgw_ops import alerts, inventory, vault
from ibgw_ops.alerts import Alert
from ibgw_ops.ansible_events import EventLog, HostFailure
from ibgw_ops.errors import BadInput, ExitCode, OpsError
from ibgw_ops.interrupts import Interrupts
from ibgw_ops.paths import ansible_env, data_dir, playbook_path, search_path, state_dir

VAULT_PROMPT = r"Vault password[^:]*:\s*?$"
# ansible-playbook's words when the inventory and --limit leave it no host: it exits 1 before any play starts.
NO_HOSTS_TARGETED = "leaves us with no hosts to target"
# A run directory this old belongs to a process that was killed before it could remove it.
ABANDONED_AFTER_SECONDS = 24 * 3600
# Failure classes in the order they decide the exit code when hosts fail differently.
CODE_PRECEDENCE = (ExitCode.BAD_INPUT, ExitCode.PROTECTED_WINDOW, ExitCode.UNREACHABLE, ExitCode.LOGIN_FAILED,
                   ExitCode.SESSION_TAKEN, ExitCode.TWOFA_TIMEOUT, ExitCode.NOT_READY, ExitCode.FAILED)


@dataclass
class RunOutcome:
    """A finished run: its events, and whether it was cancelled by a signal."""

    playbook: str
    events: EventLog
    status: str
    interrupted: str | None = None

    @property
    def failures(self) -> list[HostFailure]:
        """The failed hosts, each with its last failure."""
        return self.events.failures()

    def exit_code(self) -> ExitCode:
        """0 ok, else the class of the most telling failure (see ``CODE_PRECEDENCE``)."""
        if self.interrupted:
            return ExitCode.INTERRUPTED
        codes = {failure.code for failure in self.failures}
        for code in CODE_PRECEDENCE:
            if code in codes:
                return code
        return ExitCode.OK if self.status == "successful" else ExitCode.FAILED

    def raise_for_failure(self) -> None:
        """Turn a failed run into the CLI's error: a summary with one line per failed host."""
        code = self.exit_code()
        if code == ExitCode.OK:
            return
        if self.interrupted:
            raise OpsError(f"{self.playbook} interrupted by {self.interrupted}; the hosts may be mid-change", code)
        if not self.failures:
            said = " | ".join(self.events.last_output) or "nothing"
            raise OpsError(f"{self.playbook} failed ({self.status}) before any host reported a result; Ansible "
                           f"said: {said}", code)
        lines = "\n".join(f"  {failure.line()}" for failure in self.failures)
        raise OpsError(f"{self.playbook} failed on {len(self.failures)} host(s):\n{lines}", code)


class PlaybookRunner:
    """Runs the shipped playbooks against one inventory with the operator's verbosity and vault settings."""

    def __init__(self, inventory: Path, interrupts: Interrupts, *, verbosity: int = 0, limit: str | None = None,
                 vault_password: str | None = None) -> None:
        self.inventory = inventory
        self.interrupts = interrupts
        self.verbosity = verbosity
        self.limit = limit
        self._vault_password = vault_password
        self.interactive = sys.stderr.isatty()

    def run(self, playbook: str, extravars: Mapping[str, Any] | None = None, *, check: bool = False,
            cancellable: bool = True) -> RunOutcome:
        """Run a playbook of the collection; a teardown passes ``cancellable=False`` so no signal cuts it short."""
        import ansible_runner  # noqa: PLC0415 - heavy, and only verbs that run playbooks need it

        events = EventLog(progress=sys.stderr if self.interactive and not self.verbosity else None,
                          echo=sys.stderr if self.verbosity else None)
        runs = state_dir() / "runs"
        runs.mkdir(parents=True, exist_ok=True, mode=0o700)
        _remove_abandoned(runs)
        private = Path(tempfile.mkdtemp(prefix=f"{Path(playbook).stem}-", dir=runs))
        try:
            runner = ansible_runner.run(
                private_data_dir=str(private),
                project_dir=str(data_dir()),
                playbook=str(playbook_path(playbook)),
                inventory=str(self.inventory),
                extravars=dict(extravars or {}),
                envvars=self._envvars(),
                cmdline=self._cmdline(check),
                passwords={VAULT_PROMPT: self._vault_password} if self._vault_password else {},
                limit=self.limit,
                verbosity=self.verbosity or None,
                quiet=True,
                suppress_env_files=True,
                # Facts stay in ansible-playbook's memory: nothing reads a cache file in a directory removed after.
                fact_cache_type="memory",
                event_handler=events.handle,
                cancel_callback=self.interrupts.requested if cancellable else None,
            )
        finally:
            shutil.rmtree(private, ignore_errors=True)
        for payload in events.payloads["ibgw_alert"]:
            alerts.emit(Alert(str(payload["kind"]), str(payload["instance"]), str(payload["detail"]),
                              host=str(payload["host"])), self.inventory)
        outcome = RunOutcome(playbook, events, str(runner.status),
                             self.interrupts.describe() if runner.status == "canceled" else None)
        if not events.hosts():
            stopped = (vault.refusal(events.last_output, self.inventory, prompted=self._vault_password is not None)
                       or vault.unparsed(events.last_output, self.inventory, self._vault_password))
            if stopped:
                raise stopped
            if outcome.exit_code() == ExitCode.OK or any(NO_HOSTS_TARGETED in line for line in events.last_output):
                raise self._no_hosts()
        return outcome

    def _no_hosts(self) -> BadInput:
        """The run had no gateway host: the inventory has none, or ``--limit`` picked none of them."""
        if self.limit:
            return BadInput("--limit", f"{self.limit!r} matches no host of group ibgw_gateways in {self.inventory}",
                            f"a host name, group or Ansible pattern over that group's hosts: {self._host_names()}")
        return BadInput("inventory", f"{self.inventory} has no host in group ibgw_gateways",
                        "an inventory like the lab's: hosts under ibgw_gateways")

    def _host_names(self) -> str:
        """The inventory's gateway hosts, for a refused ``--limit``; else how to list them."""
        try:
            names = sorted(inventory.host_vars(self.inventory))
        except OpsError:
            names = []
        return ", ".join(names) or f"ansible-inventory -i {self.inventory} --graph ibgw_gateways lists them"

    def _envvars(self) -> dict[str, str]:
        # No secrets here: ansible-runner records its whole environment in the run's artifacts.
        return {
            **ansible_env(),
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            "ANSIBLE_NOCOLOR": "True",
            "PATH": search_path(),
        }

    def _cmdline(self, check: bool) -> str | None:
        args = ["--check", "--diff"] if check else []
        if self._vault_password:
            args.append("--ask-vault-pass")
        return shlex.join(args) if args else None


def _remove_abandoned(runs: Path) -> None:
    cutoff = time.time() - ABANDONED_AFTER_SECONDS
    for leftover in runs.iterdir():
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < cutoff:
                shutil.rmtree(leftover, ignore_errors=True)
