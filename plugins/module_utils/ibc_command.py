"""IBC's command server, spoken to from the host: the one client of the stop script and the modules.

IBC listens on CommandServerPort inside the container, on its loopback only (the image publishes the API and VNC
ports, never this one), so the host reaches it through ``docker exec`` and bash's ``/dev/tcp`` (the image has bash
and no netcat). IBC answers each command with one line (CommandChannel): ``OK ...`` when it took the command,
``ERROR ...`` otherwise. The stop script runs this file as a program:
``python3 ibc-command CONTAINER COMMAND PORT`` exits 0 when IBC took the command and 1 when it did not answer OK.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence

# The commands IBC's CommandDispatcher knows that the project sends.
COMMANDS = ("STOP", "RESTART")
# Seconds IBC gets to answer: it replies before it acts.
ANSWER_TIMEOUT = 5

Runner = Callable[[list[str]], tuple[int, str, str]]


def command_argv(container: str, command: str, port: int) -> list[str]:
    """The ``docker exec`` that sends one command and prints IBC's answer."""
    if command not in COMMANDS:
        raise ValueError(f"command: {command!r} (allowed: {', '.join(COMMANDS)})")
    script = (f"exec 3<>/dev/tcp/127.0.0.1/{int(port)} && echo {command} >&3 && "
              f'read -r -t {ANSWER_TIMEOUT} answer <&3 && echo "$answer"')
    return ["docker", "exec", container, "bash", "-c", script]


def send(container: str, command: str, port: int, run: Runner) -> tuple[bool, str]:
    """Whether IBC took the command, and what it (or docker) said."""
    rc, out, err = run(command_argv(container, command, port))
    answer = out.strip()
    return rc == 0 and answer.upper().startswith("OK"), answer or err.strip() or f"exit {rc}"


def _run(argv: list[str]) -> tuple[int, str, str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=ANSWER_TIMEOUT + 25)
    return done.returncode, done.stdout, done.stderr


def main(argv: Sequence[str]) -> int:
    """The stop script's entry point: CONTAINER COMMAND PORT."""
    if len(argv) != 3 or argv[1] not in COMMANDS or not argv[2].isdigit():
        print(f"usage: ibc-command CONTAINER {'|'.join(COMMANDS)} PORT", file=sys.stderr)
        return 2
    try:
        took, said = send(argv[0], argv[1], int(argv[2]), _run)
    except subprocess.TimeoutExpired:
        took, said = False, "no answer"
    print(said)
    return 0 if took else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
