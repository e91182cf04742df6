"""``ibgw-ops probe HOST:PORT``: the TWS API handshake from the controller (or a Cloud Run job's point of view).

Exit 0 when ready, 4 when the gateway is not ready (after ``--wait`` seconds when given), 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from ibgw_ops.commands.options import MAX_CLIENT_ID, client_id
from ibgw_ops.errors import ExitCode
from ibgw_ops.on_host import tws_probe

MAX_WAIT = 3600
# What a socket can connect to: a DNS name, an IPv4 or IPv6 address (an IPv6 one may be in brackets).
HOST = re.compile(r"^([A-Za-z0-9._:-]+|\[[0-9A-Fa-f:.]+\])$")


def register(verbs: Any) -> None:
    """Add ``probe``."""
    parser = verbs.add_parser("probe", help=run.__doc__, description=__doc__)
    parser.add_argument("address", metavar="HOST:PORT", type=parse_address, help="the gateway's published API port")
    parser.add_argument("--client-id", type=client_id, default=tws_probe.DEFAULT_CLIENT_ID, metavar="N",
                        help=f"client id reserved for probes, 0-{MAX_CLIENT_ID} (default %(default)s)")
    parser.add_argument("--wait", type=wait_seconds, default=0.0, metavar="SECONDS",
                        help=f"poll until ready or this many seconds have passed, 0-{MAX_WAIT} (default 0: once)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=run)


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT``: a host name or IP address (``[v6]`` too) and a port in 1-65535."""
    host, _, port = text.rpartition(":")
    if not HOST.match(host) or not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"'{text}' is not HOST:PORT with a host name or IP address and a port in "
                                         "1-65535")
    return host.strip("[]"), int(port)


def wait_seconds(text: str) -> float:
    """Seconds to poll, 0 to an hour; nan and inf would poll for ever."""
    try:
        wait = float(text)
    except ValueError:
        wait = -1.0
    if not 0 <= wait <= MAX_WAIT:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds from 0 to {MAX_WAIT}")
    return wait


def run(args: argparse.Namespace) -> int:
    """Say whether an API client would succeed now (or within --wait seconds)."""
    host, port = args.address
    if args.wait:
        result = tws_probe.wait_until_ready(host, port, client_id=args.client_id, timeout=args.wait)
    else:
        result = tws_probe.probe(host, port, client_id=args.client_id)
    if args.json:
        print(json.dumps(result.as_dict(), sort_keys=True))
    else:
        accounts = f" accounts={','.join(result.accounts)}" if result.accounts else ""
        version = f" server_version={result.server_version}" if result.server_version else ""
        print(f"{host}:{port} {result.state}: {result.description}{accounts}{version}")
    return int(ExitCode.OK if result.ready else ExitCode.NOT_READY)
