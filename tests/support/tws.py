"""A minimal raw TWS API client for tests that need to see individual messages (error codes, closes)."""

from __future__ import annotations

import socket
import struct


class RawClient:
    """Speaks the handshake by hand so tests can observe each step."""

    def __init__(self, port: int, timeout: float = 3.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)

    def handshake(self, client_id: int) -> str:
        """Send the version range and startApi; return the server version."""
        versions = b"v157..178"
        self.sock.sendall(b"API\0" + struct.pack(">I", len(versions)) + versions)
        server_version = self.read()[0]
        self.send(71, 2, client_id, "")
        return server_version

    @classmethod
    def in_session(cls, port: int, client_id: int) -> RawClient:
        """A client that holds ``client_id``: handshake done and nextValidId received."""
        client = cls(port)
        client.handshake(client_id)
        client.read_until("9")
        return client

    def send(self, *fields: object) -> None:
        payload = b"".join(str(f).encode() + b"\0" for f in fields)
        self.sock.sendall(struct.pack(">I", len(payload)) + payload)

    def _exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("closed by the server")
            data += chunk
        return data

    def read(self) -> list[str]:
        """One message's fields; ConnectionError when the server closed the connection."""
        (size,) = struct.unpack(">I", self._exactly(4))
        return self._exactly(size).decode().split("\0")[:-1]

    def read_until(self, message_id: str, limit: int = 20) -> list[str]:
        for _ in range(limit):
            fields = self.read()
            if fields[0] == message_id:
                return fields
        raise AssertionError(f"no message {message_id} in {limit} messages")

    def close(self) -> None:
        self.sock.close()

    def closes_without_handshake(self) -> bool:
        """Whether the server drops the connection instead of answering the handshake."""
        try:
            self.handshake(999)
        except (ConnectionError, OSError):
            return True
        return False
