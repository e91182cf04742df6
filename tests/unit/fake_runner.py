"""A stand-in for ``ansible_runner.run`` that records each call and replays scripted events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HOST = "gw1"


def stats(host: str = HOST, *, failures: int = 0, dark: int = 0, changed: int = 0) -> dict[str, Any]:
    counts = {"ok": {host: 3}, "changed": {host: changed} if changed else {}, "failures": {host: failures} if failures
              else {}, "dark": {host: dark} if dark else {}, "processed": {host: 1}, "skipped": {}, "rescued": {},
              "ignored": {}}
    return {"event": "playbook_on_stats", "event_data": counts}


def ok(msg: object, host: str = HOST, task: str = "Report", action: str = "ansible.builtin.debug") -> dict[str, Any]:
    return {"event": "runner_on_ok", "event_data": {"host": host, "task": task, "task_action": action,
                                                    "res": {"msg": msg, "changed": False}}}


def failed(msg: str, host: str = HOST, task: str = "Do it", path: str = "/r/tasks/start_instance.yml:9",
           stderr: str = "") -> dict[str, Any]:
    return {"event": "runner_on_failed", "event_data": {"host": host, "task": task, "task_path": path,
                                                        "task_action": "ansible.builtin.fail",
                                                        "res": {"msg": msg, "stderr": stderr}}}


def unreachable(msg: str, host: str = HOST) -> dict[str, Any]:
    return {"event": "runner_on_unreachable", "event_data": {"host": host, "task": "Gathering", "res": {"msg": msg}}}


@dataclass
class FakeRunner:
    """Call log plus a script: playbook name -> (events, status)."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    script: dict[str, tuple[list[dict[str, Any]], str]] = field(default_factory=dict)
    during: Callable[[dict[str, Any]], None] | None = None

    def __call__(self, **kwargs: Any) -> SimpleNamespace:
        playbook = Path(kwargs["playbook"]).name
        self.calls.append({**kwargs, "private_existed": Path(kwargs["private_data_dir"]).is_dir()})
        if self.during:
            self.during(kwargs)
        events, status = self.script.get(playbook, ([stats()], "successful"))
        for event in events:
            kwargs["event_handler"](event)
        canceller = kwargs.get("cancel_callback")
        if canceller is not None and canceller():
            status = "canceled"
        return SimpleNamespace(status=status, rc=0 if status == "successful" else 2)

    def playbooks(self) -> list[tuple[str, dict[str, Any]]]:
        return [(Path(c["playbook"]).name, c["extravars"]) for c in self.calls]
