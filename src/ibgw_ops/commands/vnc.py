"""``ibgw-ops vnc INSTANCE``: the gateway's screen, for a sign-in that needs it (a TOTP code, a security dialog).

The VM publishes an instance's VNC on its loopback only, and only when the instance has a VNC password; this verb
asks the role where (the ``vnc`` action, on the controller only) and holds an ``ssh -L`` tunnel to it, reaching the
VM exactly as ``ibgw-ops ssh`` does (IAP or the external IP, as the inventory says).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ibgw_ops import inventory, lifecycle
from ibgw_ops.commands import shell
from ibgw_ops.commands.options import open_runner, runner_options, target_type
from ibgw_ops.errors import BadInput, ExitCode
from ibgw_ops.interrupts import Interrupts

# How long ssh has to end after its SIGTERM before it is killed; how often the wait looks.
TERM_GRACE = 5.0
WAIT_STEP = 0.2


def register(verbs: Any) -> None:
    """Add ``vnc``."""
    parser = verbs.add_parser("vnc", help=vnc.__doc__, description=__doc__, parents=[runner_options()])
    parser.add_argument("instance", type=target_type, metavar="INSTANCE", help="the instance whose screen to show")
    parser.add_argument("--local-port", type=port_number, metavar="PORT",
                        help="the local port a VNC viewer connects to (default: the instance's vnc_port)")
    parser.set_defaults(handler=vnc)


def port_number(text: str) -> int:
    """A TCP port, 1-65535."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port (allowed: 1-65535)")
    return int(text)


def vnc(args: argparse.Namespace) -> int:
    """Tunnel a local port to an instance's VNC on its VM until Ctrl-C; print where to point a VNC viewer."""
    path = inventory.resolve(args.inventory)
    with open_runner(args, path) as runner:
        rows = lifecycle.vnc(runner)
    row = pick(rows, args.instance)
    remote = int(row["vnc_port"])
    local = args.local_port or remote
    argv = tunnel_argv(inventory.host_vars(path)[row["host"]], local, remote)
    print(f"VNC of {row['instance']} on {row['host']}: point a VNC viewer at 127.0.0.1:{local} (the instance's "
          "VNC password); Ctrl-C closes the tunnel", flush=True)
    return hold(argv)


def pick(rows: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    """The named instance's row: on one host, with VNC on; anything else is refused naming what to change."""
    found = [row for row in rows if row["instance"] == name]
    if not found:
        raise BadInput("INSTANCE", f"'{name}' is not an instance of the inventory",
                       sorted({str(row["instance"]) for row in rows}))
    if len(found) > 1:
        raise BadInput("--limit", f"instance '{name}' is on several hosts: say which",
                       sorted(str(row["host"]) for row in found))
    row = found[0]
    if not int(row["vnc_port"]):
        raise BadInput(f"ib_gateway_credentials.{name}.vnc_password", "not set, so its VM serves no VNC",
                       f"a vnc_password (or vnc_password_secret) for {name}, then 'ibgw-ops deploy' and a start")
    return row


def tunnel_argv(hostvars: Mapping[str, Any], local: int, remote: int) -> list[str]:
    """The ssh command forwarding 127.0.0.1:``local`` here to 127.0.0.1:``remote`` on the VM, and nothing else."""
    return shell.ssh_argv(hostvars, [], ["-N", "-o", "ExitOnForwardFailure=yes",
                                         "-L", f"127.0.0.1:{local}:127.0.0.1:{remote}"])


def hold(argv: list[str]) -> int:
    """Run the tunnel until ssh ends (its exit code) or a signal ends it (0: the operator closed it)."""
    with Interrupts() as interrupts:
        process = subprocess.Popen(argv)
        interrupts.listen(lambda signum: process.send_signal(signal.SIGTERM))
        if interrupts.requested():
            process.send_signal(signal.SIGTERM)
        code = _wait(process, interrupts)
    if interrupts.requested():
        print("ibgw-ops: tunnel closed", file=sys.stderr)
        return int(ExitCode.OK)
    return code


def _wait(process: subprocess.Popen[bytes], interrupts: Interrupts) -> int:
    """Wait for ssh and return its exit code; kill it if it is still there ``TERM_GRACE`` s after a signal.

    Ctrl-C must always close the tunnel. The wait polls instead of blocking in one waitpid, so that a signal's
    handler (which sends ssh its SIGTERM) runs at once.
    """
    deadline: float | None = None
    while True:
        try:
            return process.wait(timeout=WAIT_STEP)
        except subprocess.TimeoutExpired:
            if interrupts.requested():
                deadline = deadline or time.monotonic() + TERM_GRACE
                if time.monotonic() >= deadline:
                    process.kill()
