"""What a playbook run said, read from ansible-runner's events.

Failures per host, the recap, the payloads the roles report for ibgw-ops, and one progress line per task result
for a watching operator.
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any, TextIO

from ibgw_ops.errors import FAILURE_CLASSES, ExitCode

# Debug messages shaped {"ibgw_<kind>": {...}} are results for the CLI to show (status rows, ready gateways).
PAYLOAD_PREFIX = "ibgw_"
# Bookkeeping actions whose "ok" would only clutter the progress lines (their failures are still shown).
QUIET_ACTIONS = frozenset({"include_tasks", "import_tasks", "include_role", "import_role", "include_vars", "assert",
                           "validate_argument_spec", "set_fact", "stat", "debug"})
RESULT_EVENTS = {"runner_on_ok": "ok", "runner_on_failed": "failed", "runner_on_unreachable": "unreachable"}


@dataclass(frozen=True)
class HostFailure:
    """The last thing that went wrong on one host, and how the CLI classifies it."""

    host: str
    task: str
    message: str
    code: ExitCode

    def line(self) -> str:
        """One line for the failure summary."""
        return f"{self.host}: {self.task}: {self.message}"


class EventLog:
    """Collects one run's events in memory; nothing is written to the runner's directory."""

    def __init__(self, progress: TextIO | None = None, echo: TextIO | None = None) -> None:
        self.stats: dict[str, dict[str, int]] | None = None
        self.payloads: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._last_failure: dict[str, HostFailure] = {}
        # A loop's first failed item per host, from its own event: the loop's final result does not say which item
        # failed on every ansible-core (2.21 drops the items' "failed" key).
        self._failed_item: dict[str, dict[str, Any]] = {}
        self.last_output: deque[str] = deque(maxlen=4)
        self._progress = progress
        self._echo = echo

    def handle(self, event: dict[str, Any]) -> bool:
        """ansible-runner's ``event_handler``: returns False so no event (task output) lands on disk."""
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        if event.get("stdout"):
            self.last_output.extend(line for line in event["stdout"].splitlines() if line.strip())
            if self._echo is not None:
                print(event["stdout"], file=self._echo, flush=True)
        if kind == "playbook_on_stats":
            self.stats = {key: dict(data.get(key) or {}) for key in
                          ("ok", "changed", "dark", "failures", "processed", "skipped", "rescued", "ignored")}
        elif kind == "runner_item_on_failed" and not data.get("ignore_errors"):
            self._failed_item.setdefault(str(data.get("host", "?")), data.get("res") or {})
        elif kind in RESULT_EVENTS:
            self._result(kind, data)
        return False

    def _result(self, kind: str, data: dict[str, Any]) -> None:
        host, task, res = str(data.get("host", "?")), str(data.get("task", "")), data.get("res") or {}
        outcome = RESULT_EVENTS[kind]
        failed_item = self._failed_item.pop(host, None)
        if kind == "runner_on_ok":
            outcome = "changed" if res.get("changed") else "ok"
            for item in res.get("results") or [res]:
                self._collect_payload(host, item.get("msg"))
        elif kind == "runner_on_failed" and data.get("ignore_errors"):
            outcome = "ignored"
        elif kind == "runner_on_failed":
            self._last_failure[host] = HostFailure(host, task, _message(res, failed_item), _classify(data, res))
        else:
            self._last_failure[host] = HostFailure(host, task, _message(res), ExitCode.UNREACHABLE)
        quiet = outcome == "ok" and str(data.get("task_action", "")).rsplit(".", 1)[-1] in QUIET_ACTIONS
        if self._progress is not None and not quiet:
            print(f"  {outcome:<11} {host}  {task}", file=self._progress, flush=True)

    def _collect_payload(self, host: str, message: object) -> None:
        if isinstance(message, dict) and len(message) == 1:
            (key, value), = message.items()
            if key.startswith(PAYLOAD_PREFIX) and isinstance(value, dict):
                self.payloads[key].append({"host": host, **value})

    def failures(self) -> list[HostFailure]:
        """The hosts the recap counts as failed or unreachable, each with its last failure."""
        if self.stats is None:
            return sorted(self._last_failure.values(), key=lambda f: f.host)
        failed = set(self.stats["failures"]) | set(self.stats["dark"])
        return [self._last_failure.get(host) or HostFailure(host, "?", "failed (no task result)", ExitCode.FAILED)
                for host in sorted(failed)]

    def hosts(self) -> list[str]:
        """Hosts the run acted on."""
        return sorted(self.stats["processed"]) if self.stats else []

    def changed(self) -> int:
        """Tasks that changed something, summed over hosts."""
        return sum(self.stats["changed"].values()) if self.stats else 0


def _classify(data: dict[str, Any], res: dict[str, Any]) -> ExitCode:
    """The failure's class from its message ("<CLASS>: ..."); a role's argument_specs refusal is bad input."""
    if str(data.get("task_action", "")).endswith("validate_argument_spec"):
        return ExitCode.BAD_INPUT
    failure_class = str(res.get("msg", "")).partition(": ")[0]
    return FAILURE_CLASSES.get(failure_class, ExitCode.FAILED)


def _message(res: dict[str, Any], failed_item: dict[str, Any] | None = None) -> str:
    """The result's message and last stderr line; for a loop, those of its first failed item too."""
    parts = [str(res.get("msg") or "")]
    stderr = str(res.get("stderr") or "").strip()
    if stderr:
        parts.append(stderr.splitlines()[-1])
    if failed_item:
        parts.append(_message(failed_item))
    return re.sub(r"\s+", " ", ": ".join(p for p in parts if p)).strip() or "failed"
