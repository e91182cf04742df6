"""A fake of the GCE metadata server's token endpoint and Secret Manager's ``versions.access``, standard library only.

Unit tests run it in a thread; the lab test copies this file to the lab VM and runs it there as a script
(``python3 fake_secret_manager.py STATE_DIR PORT``, bound to 127.0.0.1). Its behaviour comes from
``STATE_DIR/state.json``, read again on every request so a test changes it by replacing the file::

    {"token": "...", "email": "vm@project.iam.gserviceaccount.com", "metadata_status": 200,
     "secrets": {"projects/p/secrets/s/versions/latest":
                 {"status": 200, "data": "<base64>", "version": "projects/p/secrets/s/versions/3"}}}

A secret's ``status`` may be 403 or 404 (Google's JSON error bodies) or 302 (a redirect to another secret, which a
client must not follow). Payloads are kept base64-encoded, as Secret Manager sends them, so the plain value is in no
file of the fake. ``STATE_DIR/requests.jsonl`` records each request's path and whether its headers were right
(never the headers themselves).
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

METADATA_PREFIX = "/computeMetadata/v1/instance/service-accounts/default/"
SECRET_PREFIX = "/v1/"
ACCESS_SUFFIX = ":access"
REASONS = {403: "PERMISSION_DENIED", 404: "NOT_FOUND", 401: "UNAUTHENTICATED"}


class FakeHandler(BaseHTTPRequestHandler):
    """Answers the token, email and access requests from the state file."""

    server: FakeServer

    def do_GET(self) -> None:
        state = json.loads((self.server.state_dir / "state.json").read_text())
        flavor_ok = self.headers.get("Metadata-Flavor") == "Google"
        bearer_ok = self.headers.get("Authorization") == f"Bearer {state['token']}"
        self._record({"path": self.path, "flavor_ok": flavor_ok, "bearer_ok": bearer_ok})
        if self.path.startswith(METADATA_PREFIX):
            self._metadata(state, self.path.removeprefix(METADATA_PREFIX), flavor_ok=flavor_ok)
        elif self.path.startswith(SECRET_PREFIX) and self.path.endswith(ACCESS_SUFFIX):
            self._access(state, self.path.removeprefix(SECRET_PREFIX).removesuffix(ACCESS_SUFFIX), bearer_ok=bearer_ok)
        else:
            self._error(404, f"no route {self.path}")

    def _metadata(self, state: dict[str, Any], item: str, *, flavor_ok: bool) -> None:
        if not flavor_ok:
            self._send(403, "text/html", b"Missing Metadata-Flavor:Google header.")
        elif state.get("metadata_status", 200) != 200:
            self._send(state["metadata_status"], "text/html", b"metadata error")
        elif item == "token":
            self._json(200, {"access_token": state["token"], "expires_in": 3599, "token_type": "Bearer"})
        elif item == "email" and state.get("email"):
            self._send(200, "application/text", state["email"].encode())
        else:
            self._send(404, "text/html", b"not found")

    def _access(self, state: dict[str, Any], name: str, *, bearer_ok: bool) -> None:
        secret = state.get("secrets", {}).get(name)
        if not bearer_ok:
            self._error(401, "Request had invalid authentication credentials.")
        elif secret is None or secret.get("status") == 404:
            self._error(404, f"Secret Version [{name}] not found or has no versions.")
        elif secret.get("status") == 403:
            self._error(403, f"Permission 'secretmanager.versions.access' denied for resource '{name}' "
                             "(or it may not exist).")
        elif secret.get("status") == 302:
            self.send_response(302)
            self.send_header("Location", f"{SECRET_PREFIX}{secret['location']}{ACCESS_SUFFIX}")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._json(200, {"name": secret.get("version", name), "payload": {"data": secret["data"]}})

    def _error(self, code: int, message: str) -> None:
        self._json(code, {"error": {"code": code, "message": message, "status": REASONS.get(code, "UNKNOWN")}})

    def _json(self, code: int, document: dict[str, Any]) -> None:
        self._send(code, "application/json", json.dumps(document).encode())

    def _send(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _record(self, entry: dict[str, Any]) -> None:
        with self.server.lock, (self.server.state_dir / "requests.jsonl").open("a") as log:
            log.write(json.dumps(entry) + "\n")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests.jsonl is the log."""


class FakeServer(ThreadingHTTPServer):
    """The fake on 127.0.0.1, reading its behaviour from state_dir."""

    daemon_threads = True

    def __init__(self, state_dir: Path, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), FakeHandler)
        self.state_dir = state_dir
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def requests(self) -> list[dict[str, Any]]:
        path = self.state_dir / "requests.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def main() -> None:
    """Serve until killed; write STATE_DIR/ready once listening."""
    state_dir, port = Path(sys.argv[1]), int(sys.argv[2])
    server = FakeServer(state_dir, port)
    (state_dir / "ready").write_text(server.url)
    server.serve_forever()


if __name__ == "__main__":
    main()
