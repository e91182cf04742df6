"""SIGINT, SIGTERM and SIGHUP as a flag instead of an abrupt exit, so a verb can always tidy up.

ansible-playbook runs in a session of its own (ansible-runner spawns it on a pty), so a Ctrl-C or a cron
``kill`` reaches only ibgw-ops: the runner cancels the playbook when asked, and ``paper-run`` forwards the
signal to its command and still takes paper down.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupts:
    """While entered, records the first interrupting signal and tells the listeners about every one."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._listeners: list[Callable[[int], None]] = []
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Interrupts:
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def listen(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(signum)`` on each interrupting signal (for example: pass it on to a child)."""
        self._listeners.append(listener)

    def requested(self) -> bool:
        """Whether an interrupting signal has arrived."""
        return self.received is not None

    def describe(self) -> str:
        """The signal's name, for messages."""
        return signal.Signals(self.received).name if self.received is not None else "no signal"

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
        for listener in self._listeners:
            listener(signum)
