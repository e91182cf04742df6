"""A local webhook for alert tests: records each POST (its path and body; JSON bodies also parsed, with the time each
arrived)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer


class Receiver(HTTPServer):
    """A webhook that records each POSTed body and answers with ``status``; ``host`` is the address it listens on
    (a lab VM reaches this machine at its network's gateway address)."""

    def __init__(self, status: int = 204, delay: float = 0.0, host: str = "127.0.0.1", port: int = 0) -> None:
        self.bodies: list[dict] = []
        self.arrived: list[datetime] = []
        self.requests: list[tuple[str, bytes]] = []
        self.status, self.delay = status, delay
        self.release = threading.Event()
        super().__init__((host, port), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def arrival(self, body: dict) -> datetime:
        """When that recorded body arrived."""
        return self.arrived[next(i for i, each in enumerate(self.bodies) if each is body)]

    @property
    def url(self) -> str:
        return f"http://{self.server_address[0]}:{self.server_address[1]}/hook"


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server: Receiver = self.server  # type: ignore[assignment]
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        server.requests.append((self.path, raw))
        if self.headers.get("Content-Type", "").startswith("application/json"):
            server.arrived.append(datetime.now(UTC))
            server.bodies.append(json.loads(raw))
        if server.delay:
            server.release.wait(server.delay)
        self.send_response(server.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass
