"""Rehearsal stand-in for the ib-gateway container image. It is NOT IBKR software and never reaches IBKR.

It honours the image's contract so that ibgw-ops can be tested for real without an IBKR login:
the same variables (``TWS_USERID``, ``TWS_PASSWORD`` / ``TWS_PASSWORD_FILE``, ``TRADING_MODE``,
``EXISTING_SESSION_DETECTED_ACTION``, ``TWS_SETTINGS_PATH``), the same ports (4003 live / 4004 paper, accepted
at once as socat does), the TWS API handshake after a login delay, and IBC's command server when the mounted
``config.ini.tmpl`` enables it. Rehearsal knobs are ``STANDIN_*`` variables (see the README); none is a secret.
``kill -USR1 1`` in the container plays "the same user logged in elsewhere".
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import os
import re
import signal
import struct
import sys
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVER_VERSION = 176
MIN_CLIENT_VERSION = 100
API_PORTS = {"live": 4003, "paper": 4004}
SESSION_ACTIONS = ("primary", "primaryoverride", "secondary", "manual")
DEFAULT_TEMPLATE = "/home/ibgateway/ibc/config.ini.tmpl"
CLIENT_ID_IN_USE = 326
CONNECTIVITY_LOST = 1100
CONNECTIVITY_RESTORED = 1102

# Requests an API client sends while it synchronises, and the "end" message that completes each.
_SYNC_ANSWERS: dict[str, tuple[str, ...]] = {"61": ("62", "1"), "5": ("53", "1"), "99": ("102",)}


class SetupError(Exception):
    """The container was started with settings the real image would also refuse."""


def log(message: str) -> None:
    """One line on stdout, as the real image's log would have it."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
    print(f"{stamp} ibgw-standin: {message}", flush=True)


@dataclass
class Settings:
    """Everything the stand-in reads from its environment and mounted files."""

    userid: str
    password: str = field(repr=False)
    mode: str
    session_action: str
    settings_path: Path
    time_zone: str
    login_delay: float
    reconnect_delay: float
    accounts: str
    accept_userid: str
    accept_password_sha256: str
    other_session: bool
    never_login: bool
    api_hang: bool
    listen_host: str
    api_port: int
    command_port: int


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "no").strip().lower() in ("1", "yes", "true")


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise SetupError(f"{name}={raw!r} is not a number of seconds") from None
    if value < 0:
        raise SetupError(f"{name} must not be negative")
    return value


def _command_port(template: Path) -> int:
    if not template.exists():
        return 0
    match = re.search(r"^\s*CommandServerPort\s*=\s*(\d+)\s*$", template.read_text(), re.MULTILINE)
    return int(match.group(1)) if match else 0


def _password(env: Mapping[str, str]) -> str:
    plain, path = env.get("TWS_PASSWORD"), env.get("TWS_PASSWORD_FILE")
    if plain and path:
        raise SetupError("TWS_PASSWORD and TWS_PASSWORD_FILE are both set; set only one")
    if path:
        try:
            return Path(path).read_text().rstrip("\r\n")
        except OSError as exc:
            raise SetupError(f"TWS_PASSWORD_FILE {path} cannot be read: {exc.strerror}") from None
    if plain:
        return plain
    raise SetupError("TWS_PASSWORD or TWS_PASSWORD_FILE is required")


def load_settings(env: Mapping[str, str]) -> Settings:
    """Read and check the container's settings the way the image's start script does."""
    mode = env.get("TRADING_MODE", "paper")
    if mode not in API_PORTS:
        raise SetupError(f"TRADING_MODE={mode!r}: the stand-in rehearses live or paper")
    action = env.get("EXISTING_SESSION_DETECTED_ACTION", "primary")
    if action not in SESSION_ACTIONS:
        raise SetupError(f"EXISTING_SESSION_DETECTED_ACTION={action!r} (allowed: {', '.join(SESSION_ACTIONS)})")
    userid = env.get("TWS_USERID", "")
    if not userid:
        raise SetupError("TWS_USERID is required")
    return Settings(
        userid=userid,
        password=_password(env),
        mode=mode,
        session_action=action,
        settings_path=Path(env.get("TWS_SETTINGS_PATH", "/home/ibgateway/Jts")),
        time_zone=env.get("TIME_ZONE") or env.get("TZ") or "Etc/UTC",
        login_delay=_seconds(env, "STANDIN_LOGIN_DELAY", 2.0),
        reconnect_delay=_seconds(env, "STANDIN_RECONNECT_DELAY", 3.0),
        accounts=env.get("STANDIN_ACCOUNTS") or ("DU1234567" if mode == "paper" else "U1234567"),
        accept_userid=env.get("STANDIN_ACCEPT_USERID", ""),
        accept_password_sha256=env.get("STANDIN_ACCEPT_PASSWORD_SHA256", "").lower(),
        other_session=_flag(env, "STANDIN_OTHER_SESSION"),
        never_login=_flag(env, "STANDIN_NEVER_LOGIN"),
        api_hang=_flag(env, "STANDIN_API_HANG"),
        listen_host=env.get("STANDIN_LISTEN_HOST", "0.0.0.0"),  # noqa: S104 - socat listens on all interfaces
        api_port=int(env.get("STANDIN_API_PORT") or API_PORTS[mode]),
        command_port=_command_port(Path(env.get("STANDIN_IBC_TEMPLATE", DEFAULT_TEMPLATE))),
    )


def frame(*fields: object) -> bytes:
    """One length-prefixed TWS API message of NUL-terminated fields."""
    payload = b"".join(str(f).encode() + b"\0" for f in fields)
    return struct.pack(">I", len(payload)) + payload


async def read_payload(reader: asyncio.StreamReader) -> str:
    """Read one length-prefixed message."""
    (size,) = struct.unpack(">I", await reader.readexactly(4))
    return (await reader.readexactly(size)).decode(errors="replace")


async def read_fields(reader: asyncio.StreamReader) -> list[str]:
    """Read one message of NUL-terminated fields."""
    return (await read_payload(reader)).split("\0")[:-1]


class Gateway:
    """The gateway's observable behaviour: login, API sessions, session conflicts, IBC commands."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state = "starting"
        self.exit_code = 0
        self.stopped = asyncio.Event()
        self.clients: dict[int, asyncio.StreamWriter] = {}
        self.server_version = SERVER_VERSION
        self.next_order_id = 1
        self._tasks: set[asyncio.Task[None]] = set()

    def stop(self, code: int, reason: str) -> None:
        """Shut down tidily with an exit code."""
        if not self.stopped.is_set():
            log(reason)
            self.exit_code = code
            self.stopped.set()

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run a background task and keep a reference to it."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def login(self) -> None:
        """Play IBC's login: the delay, the credential check, and an existing session elsewhere."""
        s = self.settings
        log(f"IBC: starting {s.mode} login as {s.userid}")
        if s.other_session and s.session_action == "secondary":
            self.stop(0, "IBC: existing session detected; ExistingSessionDetectedAction=secondary: exiting")
            return
        if s.never_login:
            log("IBC: second factor authentication initiated; waiting for approval on IBKR Mobile")
            return
        await asyncio.sleep(s.login_delay)
        if (s.accept_userid and s.userid != s.accept_userid) or (
            s.accept_password_sha256
            and hashlib.sha256(s.password.encode()).hexdigest() != s.accept_password_sha256
        ):
            self.stop(1, "IBC: Login failed: Unrecognized Username or Password")
            return
        if s.other_session:
            if s.session_action == "manual":
                log("IBC: existing session detected; ExistingSessionDetectedAction=manual: waiting for a human")
                return
            log(f"IBC: existing session detected; ExistingSessionDetectedAction={s.session_action}: taking over")
        self.state = "ready"
        log(f"IBC: Login has completed; API ready on port {s.api_port} for accounts {s.accounts}")

    def session_taken(self) -> None:
        """The same user logged in elsewhere: react as ExistingSessionDetectedAction says."""
        action = self.settings.session_action
        log(f"IBC: the session was taken by a login elsewhere (ExistingSessionDetectedAction={action})")
        if self.state == "starting":
            self.settings.other_session = True
            return
        if action in ("secondary", "primaryoverride"):
            self.stop(0, "IBC: yielding the session to the other login: exiting")
            return
        self.state = "disconnected"
        self.broadcast_error(CONNECTIVITY_LOST, "Connectivity between IB and Trader Workstation has been lost.")
        if action == "primary":
            self.spawn(self.reclaim())

    async def reclaim(self) -> None:
        """As primary: take the session back after a moment."""
        await asyncio.sleep(self.settings.reconnect_delay)
        if self.state == "disconnected":
            self.reconnect()

    def reconnect(self) -> None:
        """Back in session: tell the API clients."""
        self.state = "ready"
        log("IBC: session reclaimed; connectivity restored")
        self.broadcast_error(
            CONNECTIVITY_RESTORED,
            "Connectivity between IB and Trader Workstation has been restored - data maintained.",
        )

    async def restart(self) -> None:
        """IBC RESTART: log out and back in with the saved session (no second factor)."""
        self.state = "starting"
        for writer in list(self.clients.values()):
            writer.close()
        self.clients.clear()
        self.settings.settings_path.joinpath("autorestart").write_text(f"{int(time.time())}\n")
        log("IBC: restarting (no second factor authentication needed)")
        await asyncio.sleep(self.settings.login_delay)
        if not self.stopped.is_set():
            self.state = "ready"
            log("IBC: Login has completed after restart")

    def error_frame(self, request_id: int, code: int, text: str) -> bytes:
        """An error/notice message in the negotiated server version's layout."""
        if self.server_version >= 166:
            return frame(4, 2, request_id, code, text, "")
        return frame(4, 2, request_id, code, text)

    def broadcast_error(self, code: int, text: str) -> None:
        """Send a notice to every connected API client."""
        for writer in self.clients.values():
            writer.write(self.error_frame(-1, code, text))

    async def serve_api(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One API client: closed at once while starting (as socat does), else the handshake and a session."""
        client_id: int | None = None
        try:
            if self.state == "starting":
                return
            if await reader.readexactly(4) != b"API\0":
                return
            versions = await read_payload(reader)  # "v157..178[ options]", not NUL-terminated
            match = re.match(r"v(\d+)(?:\.\.(\d+))?", versions)
            if not match or int(match.group(2) or match.group(1)) < MIN_CLIENT_VERSION:
                return
            self.server_version = min(SERVER_VERSION, int(match.group(2) or match.group(1)))
            now = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d %H:%M:%S UTC")
            writer.write(frame(self.server_version, now))
            start = await read_fields(reader)
            if len(start) < 3 or start[0] != "71":
                return
            client_id = int(start[2])
            if client_id in self.clients:
                writer.write(self.error_frame(
                    -1, CLIENT_ID_IN_USE,
                    "Unable to connect as the client id is already in use. Retry with a unique client id.",
                ))
                await writer.drain()
                client_id = None
                return
            self.clients[client_id] = writer
            if not self.settings.api_hang:
                writer.write(frame(15, 1, self.settings.accounts))
                writer.write(frame(9, 1, self.next_order_id))
                if self.state == "disconnected":
                    writer.write(self.error_frame(
                        -1, CONNECTIVITY_LOST, "Connectivity between IB and Trader Workstation has been lost."
                    ))
            await writer.drain()
            await self.answer_requests(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            if client_id is not None and self.clients.get(client_id) is writer:
                del self.clients[client_id]
            writer.close()

    async def answer_requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer the requests an API client makes while it synchronises; ignore the rest."""
        while True:
            fields = await read_fields(reader)
            if self.settings.api_hang or not fields:
                continue
            kind = fields[0]
            if kind in _SYNC_ANSWERS:
                writer.write(frame(*_SYNC_ANSWERS[kind]))
            elif kind == "6":
                writer.write(frame(54, 1, fields[3] if len(fields) > 3 else ""))
            elif kind in ("7", "76"):
                writer.write(frame(55 if kind == "7" else 74, 1, fields[2] if len(fields) > 2 else 0))
            elif kind == "49":
                writer.write(frame(49, 1, int(time.time())))
            elif kind == "8":
                writer.write(frame(9, 1, self.next_order_id))
            await writer.drain()

    async def serve_commands(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """IBC's command server: one command per line."""
        try:
            while line := await reader.readline():
                command = line.decode(errors="replace").strip().upper()
                if command == "EXIT":
                    break
                if command in ("STOP", "PAUSE"):
                    writer.write(b"OK\n")
                    await writer.drain()
                    self.stop(0, f"IBC: {command} received on the command server: shutting down tidily")
                    break
                if command == "RESTART":
                    self.spawn(self.restart())
                elif command in ("RECONNECTACCOUNT", "RECONNECTDATA"):
                    if self.state == "disconnected":
                        self.reconnect()
                elif command:
                    writer.write(b"ERROR: unknown command\n")
                    continue
                else:
                    continue
                writer.write(b"OK\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def run(self) -> int:
        """Serve until stopped; return the exit code."""
        s = self.settings
        loop = asyncio.get_running_loop()
        for signum, name in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")):
            loop.add_signal_handler(signum, self.stop, 0, f"received {name}: logging out tidily")
        loop.add_signal_handler(signal.SIGUSR1, self.session_taken)
        servers = [await asyncio.start_server(self.serve_api, s.listen_host, s.api_port)]
        log(f"socat: accepting {s.mode} API connections on {s.listen_host}:{s.api_port}")
        if s.command_port:
            servers.append(await asyncio.start_server(self.serve_commands, "127.0.0.1", s.command_port))
            log(f"IBC: command server listening on 127.0.0.1:{s.command_port}")
        self.spawn(self.login())
        await self.stopped.wait()
        for server in servers:
            server.close()
        for writer in list(self.clients.values()):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        return self.exit_code


def prepare_settings_dir(settings: Settings) -> None:
    """Create the settings directory; like the image, write jts.ini's time zone only when it is new."""
    settings.settings_path.mkdir(parents=True, exist_ok=True)
    jts = settings.settings_path / "jts.ini"
    if not jts.exists():
        jts.write_text(f"[IBGateway]\nApiOnly=true\n\n[Logon]\nTimeZone={settings.time_zone}\n")


def main() -> int:
    """Start like the image's run.sh: check settings, then serve."""
    log("REHEARSAL STAND-IN for the ib-gateway image: not IBKR software; it never connects to IBKR")
    try:
        settings = load_settings(os.environ)
        prepare_settings_dir(settings)
    except (SetupError, OSError) as exc:
        log(f"error: {exc}")
        return 1
    for name in ("TWS_PASSWORD", "TWS_PASSWORD_FILE"):
        os.environ.pop(name, None)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(Gateway(settings).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
