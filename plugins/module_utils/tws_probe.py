"""Readiness probe for IB Gateway: the TWS API handshake, because an open port proves nothing.

Written once: the CLI's ``probe`` verb imports it, and the ``ibgw_gateway_up`` and ``ibgw_status`` modules run
it on the VM against the published port.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

# Client version range: stay below 201, where servers switch some messages to protobuf.
CLIENT_VERSIONS = b"v157..178"
DEFAULT_CLIENT_ID = 999
NEXT_VALID_ID = "9"
MANAGED_ACCOUNTS = "15"
ERROR = "4"
CLIENT_ID_IN_USE = 326
DISCONNECTED_CODES = frozenset({1100, 2110})
RESTORED_CODES = frozenset({1101, 1102})
# After nextValidId and managedAccounts, how long to listen for a connectivity notice the gateway sends at once.
SETTLE_SECONDS = 0.3

REFUSED = "refused"
UNREACHABLE = "unreachable"
NOT_READY = "not_ready"
HUNG = "hung"
READY = "ready"
DISCONNECTED = "disconnected"
CLIENT_ID_CLASH = "client_id_in_use"

DESCRIPTIONS = {
    REFUSED: "nothing listens on the port",
    UNREACHABLE: "no answer to the TCP connect (host down or filtered)",
    NOT_READY: "the port accepts, but the gateway does not answer the handshake (starting, or not logged in)",
    HUNG: "the handshake is answered, but no nextValidId arrives (the API is hung)",
    READY: "logged in and ready for API clients",
    DISCONNECTED: "logged in, but disconnected from IBKR (1100/2110)",
    CLIENT_ID_CLASH: "the probe's client id is in use by another API client",
}


@dataclass
class ProbeResult:
    """One probe's verdict and what the gateway told it."""

    state: str
    server_version: int | None = None
    accounts: list[str] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def ready(self) -> bool:
        """Whether an API client would succeed now."""
        return self.state == READY

    @property
    def description(self) -> str:
        """A sentence for humans."""
        return DESCRIPTIONS[self.state]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the Ansible module returns it)."""
        return {**asdict(self), "ready": self.ready, "description": self.description}


class _Closed(Exception):
    """The gateway closed the connection."""


class _Connection:
    """Length-prefixed, NUL-separated messages over one socket, with one deadline for everything."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.buffer = b""

    def send(self, *fields: object) -> None:
        payload = b"".join(str(value).encode() + b"\0" for value in fields)
        self.sock.sendall(struct.pack(">I", len(payload)) + payload)

    def read(self, deadline: float | None = None) -> list[str]:
        """The next message's fields; TimeoutError when the deadline passes, _Closed on EOF."""
        (size,) = struct.unpack(">I", self._exactly(4, deadline or self.deadline))
        return self._exactly(size, deadline or self.deadline).decode(errors="replace").split("\0")[:-1]

    def _exactly(self, size: int, deadline: float) -> bytes:
        while len(self.buffer) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise _Closed
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data


def probe(host: str, port: int, *, client_id: int = DEFAULT_CLIENT_ID, timeout: float = 5.0) -> ProbeResult:
    """Run the handshake once and classify the gateway's state; never raises for network errors."""
    started = time.monotonic()
    deadline = started + timeout
    result = ProbeResult(UNREACHABLE)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        result.state = REFUSED
    except OSError:
        result.state = UNREACHABLE
    else:
        with sock:
            _handshake(_Connection(sock, deadline), client_id, result)
    result.elapsed = round(time.monotonic() - started, 3)
    return result


def _handshake(connection: _Connection, client_id: int, result: ProbeResult) -> None:
    result.state = NOT_READY
    try:
        connection.sock.sendall(b"API\0" + struct.pack(">I", len(CLIENT_VERSIONS)) + CLIENT_VERSIONS)
        result.server_version = int(connection.read()[0])
        connection.send(71, 2, client_id, "")
        result.state = HUNG
        _read_session(connection, result)
    except _Closed:
        # Closed right after startApi: the client id is most likely taken.
        if result.state == HUNG:
            result.state = CLIENT_ID_CLASH
    except (TimeoutError, OSError, ValueError, IndexError, struct.error):
        pass


def _read_session(connection: _Connection, result: ProbeResult) -> None:
    """Read until nextValidId and managedAccounts, then listen briefly for connectivity notices."""
    seen: set[str] = set()
    settle_until: float | None = None
    while True:
        try:
            fields = connection.read(settle_until)
        except (TimeoutError, _Closed):
            if settle_until is None:
                raise
            break
        kind = fields[0] if fields else ""
        if kind == ERROR and len(fields) > 3:
            result.codes.append(int(fields[3]))
            if result.codes[-1] == CLIENT_ID_IN_USE:
                result.state = CLIENT_ID_CLASH
                return
        elif kind == MANAGED_ACCOUNTS and len(fields) > 2:
            result.accounts = [account for account in fields[2].split(",") if account]
        if kind in (NEXT_VALID_ID, MANAGED_ACCOUNTS):
            seen.add(kind)
        if settle_until is None and seen == {NEXT_VALID_ID, MANAGED_ACCOUNTS}:
            settle_until = min(connection.deadline, time.monotonic() + SETTLE_SECONDS)
    result.state = _connectivity(result.codes)


def _connectivity(codes: list[int]) -> str:
    """READY unless the last connectivity notice says the gateway lost IBKR."""
    for code in reversed(codes):
        if code in DISCONNECTED_CODES:
            return DISCONNECTED
        if code in RESTORED_CODES:
            return READY
    return READY


def wait_until_ready(host: str, port: int, *, client_id: int = DEFAULT_CLIENT_ID, timeout: float = 300.0,
                     interval: float = 0.25, attempt_timeout: float = 5.0,
                     still_starting: Callable[[], bool] | None = None) -> ProbeResult:
    """Probe every ``interval`` seconds until ready or ``timeout``; returns the last result.

    ``still_starting`` lets the caller stop early when waiting is pointless (the gateway's process has exited).
    """
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        result = probe(host, port, client_id=client_id, timeout=max(0.5, min(attempt_timeout, remaining)))
        if result.ready or result.state == CLIENT_ID_CLASH or time.monotonic() + interval >= deadline:
            return result
        if still_starting is not None and not still_starting():
            return result
        time.sleep(interval)
