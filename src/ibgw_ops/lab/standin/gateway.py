"""Rehearsal stand-in for IBC and IB Gateway: the Java process that ``ibcstart.sh`` launches. NOT IBKR software.

It never reaches IBKR. Every behaviour comes from IbcAlpha/IBC 3.24.1 (the version the image at
gnzsnz/ib-gateway-docker v10.45.1j-stable installs); the class that does it is named next to each. Settings come from
IBC's ``config.ini`` as the image's ``run.sh`` rendered it (envsubst), never from the environment; console lines are
IBC's own, ``yyyy-MM-dd HH:mm:ss:SSS IBC: <text>`` (Utils.formatMessage). The Gateway itself is closed source: what
it does is marked *gateway* and kept to what IBC's code and the image's scripts show of it.

Rehearsal knobs are ``STANDIN_*`` variables (docs/lab.md: the rehearsal knobs); none is a secret. Lines
``STANDIN_*=value`` in the file ``standin-knobs`` of the settings folder override them from the next Java start on
(``STANDIN_RESUME`` at the next restart), so a test changes IBKR's answers between two logins of one container.
``kill -USR1`` on this process plays "the same user logged in elsewhere", ``kill -USR2`` "IBKR's side dropped the
gateway" (``server_outage``).
"""

from __future__ import annotations

import argparse
import asyncio
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
# gateway: its own API ports when IBC's OverrideTwsApiPort is empty (the image's common.sh set_ports).
DEFAULT_API_PORTS = {"live": 4001, "paper": 4002}
SESSION_ACTIONS = ("manual", "primary", "primaryoverride", "secondary")
CLIENT_ID_IN_USE = 326
CONNECTIVITY_LOST = 1100
READ_ONLY_REJECTED = 321
KNOBS_FILE = "standin-knobs"
CONNECTIVITY_RESTORED = 1102
# IBC parses AutoRestartTime/AutoLogoffTime with DateTimeFormatter "hh:mm a" (ConfigureAutoLogoffOrRestartTimeTask).
CLOCK = re.compile(r"^(0[1-9]|1[0-2]):[0-5][0-9] (AM|PM)$")
BANNER = "!" * 79

# Requests an API client sends while it synchronises, and the "end" message that completes each.
_SYNC_ANSWERS: dict[str, tuple[str, ...]] = {"61": ("62", "1"), "5": ("53", "1"), "99": ("102",)}


def log(message: str) -> None:
    """One IBC console line (Utils.logToConsole), in the local time IBC uses."""
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S:%f")[:-3]
    print(f"{stamp} IBC: {message}", flush=True)


def log_error(message: str) -> None:
    """IBC's error block (Utils.logError): the message between two lines of '!'."""
    print(BANNER, flush=True)
    log(message)
    print(BANNER, flush=True)


def read_ini(path: Path) -> dict[str, str]:
    """IBC's config.ini as java.util.Properties reads it (DefaultSettings).

    A CR or LF ends a line, ``#`` and ``!`` start comments, the last of a repeated key wins, getString trims.
    """
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith(("#", "!")):
            values[key.strip()] = value.strip()
    return values


def _yes(value: str) -> bool:
    """IBC's Settings.getBoolean: "yes" or "true", any case."""
    return value.strip().lower() in ("yes", "true")


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    value = float(raw) if raw else default
    if value < 0:
        raise ValueError(f"{name} must not be negative")
    return value


@dataclass
class Settings:
    """IBC's settings from config.ini, and the rehearsal knobs (what IBKR's side would do)."""

    userid: str
    password: str = field(repr=False)
    mode: str
    session_action: str
    api_port: int
    command_port: int
    bind_address: str
    twofa_timeout: float
    relogin_after_twofa_timeout: bool
    auto_restart_time: str
    auto_logoff_time: str
    start_delay: float
    login_delay: float
    reconnect_delay: float
    accounts: str
    accept_userid: str
    accept_password_sha256: str
    other_session: str
    never_approve: bool
    api_hang: bool
    locked_seconds: int
    read_only_api: str
    read_only_checkbox: str


def load_settings(ini: Mapping[str, str], env: Mapping[str, str]) -> Settings:
    """What IBC reads from config.ini, plus the knobs that play IBKR."""
    mode = ini.get("TradingMode", "").lower() or "live"
    port = ini.get("OverrideTwsApiPort", "")
    relogin = ini.get("ReloginAfterSecondFactorAuthenticationTimeout", "")
    # LoginManager.reloginPermitted: an empty Relogin... setting falls back to ExitAfter...
    relogin_permitted = _yes(relogin) if relogin else _yes(ini.get("ExitAfterSecondFactorAuthenticationTimeout", ""))
    return Settings(
        userid=ini.get("IbLoginId", ""),
        password=ini.get("IbPassword", ""),
        mode=mode,
        session_action=ini.get("ExistingSessionDetectedAction", "manual").lower() or "manual",
        api_port=int(port) if port else DEFAULT_API_PORTS.get(mode, 4001),
        command_port=int(ini.get("CommandServerPort", "0") or 0),
        bind_address=ini.get("BindAddress", ""),
        twofa_timeout=_seconds(env, "STANDIN_TWOFA_TIMEOUT",
                               float(ini.get("SecondFactorAuthenticationTimeout", "") or 180)),
        relogin_after_twofa_timeout=relogin_permitted,
        auto_restart_time=ini.get("AutoRestartTime", ""),
        auto_logoff_time=ini.get("AutoLogoffTime", ""),
        start_delay=_seconds(env, "STANDIN_START_DELAY", 0.5),
        login_delay=_seconds(env, "STANDIN_LOGIN_DELAY", 1.0),
        reconnect_delay=_seconds(env, "STANDIN_RECONNECT_DELAY", 3.0),
        accounts=env.get("STANDIN_ACCOUNTS") or ("DU1234567" if mode == "paper" else "U1234567"),
        accept_userid=env.get("STANDIN_ACCEPT_USERID", ""),
        accept_password_sha256=env.get("STANDIN_ACCEPT_PASSWORD_SHA256", "").lower(),
        other_session=env.get("STANDIN_OTHER_SESSION", "no").strip().lower(),
        never_approve=_yes(env.get("STANDIN_NEVER_LOGIN", "no")),
        api_hang=_yes(env.get("STANDIN_API_HANG", "no")),
        locked_seconds=int(_seconds(env, "STANDIN_LOCKED_SECONDS", 0)),
        read_only_api=ini.get("ReadOnlyApi", ""),
        read_only_checkbox=env.get("STANDIN_READ_ONLY_CHECKBOX", "yes").strip().lower(),
    )


def knobs(config_dir: Path, env: Mapping[str, str]) -> dict[str, str]:
    """The environment's knobs, overridden by the settings folder's ``standin-knobs`` file (``STANDIN_*`` only)."""
    found = dict(env)
    path = config_dir / KNOBS_FILE
    if path.is_file():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip().startswith("STANDIN_"):
                found[key.strip()] = value.strip()
    return found


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


def _wait_text(seconds: int) -> str:
    """IBKR's words for the wait (TooManyFailedLoginAttemptsDialogHandler quotes both shapes)."""
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} minutes & {rest} seconds" if minutes else f"{rest} seconds"


def _user_dir(userid: str) -> str:
    """gateway: the per-user folder one level below the settings path, where ibcstart.sh finds ``autorestart``."""
    return "ibgw" + hashlib.sha256(userid.encode()).hexdigest()[:12]


class Gateway:
    """One life of the Java process: IBC's login handling, the API, the command server."""

    def __init__(self, settings: Settings, config_dir: Path, session_id: str, restart_dir: str) -> None:
        self.settings = settings
        self.config_dir = config_dir
        self.session_id = session_id
        self.restart_dir = restart_dir
        self.logged_in = False
        self.disconnected = False
        self.exit_code = 0
        self.stopped = asyncio.Event()
        self.clients: dict[int, asyncio.StreamWriter] = {}
        self.server_version = SERVER_VERSION
        self.next_order_id = 1
        self.attempts = 0
        # gateway: the API settings' Read-Only checkbox, kept in the user's settings (a fresh install has it set).
        self.read_only = settings.read_only_checkbox != "no"
        self._api: asyncio.Server | None = None
        self._restarting = False
        self._tasks: set[asyncio.Task[None]] = set()

    def exit(self, code: int = 0) -> None:
        """End this Java process (Runtime.halt / the gateway's own exit)."""
        self.exit_code = code
        self.stopped.set()

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run a background task and keep a reference to it."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _flag_file(self, kind: str) -> None:
        """StopTask/RestartTask: COLDRESTART<id> or PAUSE<id> in jtsConfigDir, read by ibcstart.sh's loop."""
        (self.config_dir / f"{kind}{self.session_id}").touch()

    def _credentials_refused(self) -> bool:
        s = self.settings
        if not s.userid or not s.password:
            return True
        if s.accept_userid and s.userid != s.accept_userid:
            return True
        return bool(s.accept_password_sha256
                    and hashlib.sha256(s.password.encode()).hexdigest() != s.accept_password_sha256)

    async def start(self) -> None:
        """From the JVM's start to the login dialog, then the login (or a restart's saved session)."""
        await asyncio.sleep(self.settings.start_delay)
        if self.restart_dir:
            # gateway: -Drestart=<dir> (ibcstart.sh find_auto_restart) resumes the session without a login dialog.
            self.config_dir.joinpath(self.restart_dir, "autorestart").unlink(missing_ok=True)
            await asyncio.sleep(self.settings.login_delay)
            await self.login_completed()
            return
        await self.login()

    async def login(self) -> None:
        """AbstractLoginHandler.initiateLogin, then what IBKR answers."""
        s = self.settings
        self.attempts += 1
        log(f"Login attempt: {self.attempts}")
        await asyncio.sleep(s.login_delay)
        if s.locked_seconds:
            # TooManyFailedLoginAttemptsDialogHandler logs the dialog's text; without ReloginAfter... it waits.
            log(f"Too many failed login attempts. Please wait {_wait_text(s.locked_seconds)} before attempting to "
                "re-login again.")
            return
        if self._credentials_refused():
            # LoginFailedDialogHandler: then StopTask(cold restart) before the login has completed.
            log("Login failed")
            log("Cold restart in progress")
            self.stop_task(None, cold_restart=True)
            return
        if s.other_session in ("yes", "primary") and not await self.existing_session_at_login():
            return
        if s.mode == "live":
            await self.second_factor()
            return
        await self.login_completed()

    def _session_action(self) -> str:
        action = self.settings.session_action
        if action not in SESSION_ACTIONS:
            log(f"ExistingSessionDetectedAction has an invalid value: {action}: assuming 'secondary'")
            return "secondary"
        return action

    async def existing_session_at_login(self) -> bool:
        """ExistingSessionDetectedDialogHandler before the login completes (this is "session B")."""
        action = self._session_action()
        if action == "manual":
            log("User must choose whether to continue with this session (scenario 1)")
            return False
        if action == "secondary":
            log("End this session and let the other session proceed (scenario 2)")
            self.exit(0)  # gateway: "Exit Application" closes it
            return False
        log("Don't know the type of the other session, so continue this one (scenario 3)")
        if self.settings.other_session == "primary":
            # A primary session elsewhere does not yield: the dialog comes back and this session ends.
            await asyncio.sleep(self.settings.reconnect_delay)
            log("Other session must be primary or primary override, so end this session and let the other one "
                "proceed (scenario 4)")
            self.exit(0)
            return False
        return True

    async def second_factor(self) -> None:
        """Live logins: Gateway 10.x turns the login frame into the 2FA prompt (AbstractLoginHandler, LoginManager)."""
        s = self.settings
        log("Waiting for Login frame to become SecondFactorAuthenticationDialog")
        log("Login frame has now become SecondFactorAuthenticationDialog")
        log("Second Factor Authentication initiated")
        if not s.never_approve:
            await self.login_completed()
            return
        began = time.monotonic()
        await asyncio.sleep(s.twofa_timeout)
        # LoginManager.secondFactorAuthenticationDialogClosed after IBKR's dialog timed out.
        log(f"Duration since login: {int(time.monotonic() - began)} seconds")
        if not s.relogin_after_twofa_timeout:
            log("Re-login after second factor authentication timeout not required")
            return
        log("Re-login after second factor authentication timeout in 5 second")
        await asyncio.sleep(5)
        await self.login()

    async def login_completed(self) -> None:
        """LoginManager LOGGED_IN, then the settings IBC applies after login (IbcTws.configureAutoLogoffOrRestart)."""
        s = self.settings
        self.logged_in = True
        log("Login has completed")
        # gateway: the API listens on loopback only; socat republishes it (the image's run_socat.sh).
        self._api = await asyncio.start_server(self.serve_api, "127.0.0.1", s.api_port)
        if s.auto_restart_time:
            self.configure_auto_time("Auto restart", s.auto_restart_time)
            if s.auto_logoff_time:
                log("AutoLogoffTime is ignored because AutoRestartTime is also set")
        elif s.auto_logoff_time:
            self.configure_auto_time("Auto logoff", s.auto_logoff_time)
        if s.read_only_api:
            self.configure_read_only_api(_yes(s.read_only_api))

    def configure_read_only_api(self, wanted: bool) -> None:
        """IbcTws.configureReadOnlyApi (only when ReadOnlyApi is set) runs ConfigureReadOnlyApiTask."""
        log("Setting ReadOnlyApi")
        if self.settings.read_only_checkbox == "missing":
            # A Gateway whose API settings have no such checkbox: IBC says so and the API stays read-only.
            log_error("could not find Read-Only API checkbox")
            return
        if self.read_only == wanted:
            log(f"Read-Only API checkbox is already set to: {str(wanted).lower()}")
        else:
            self.read_only = wanted
            log(f"Read-Only API checkbox is now set to: {str(wanted).lower()}")

    def configure_auto_time(self, name: str, value: str) -> None:
        """ConfigureAutoLogoffOrRestartTimeTask: a time IBC cannot parse is logged as an exception and not applied."""
        log(f"Setting {name} time")
        if not CLOCK.match(value):
            print(BANNER, flush=True)
            log("An exception has occurred:")
            print(f'{name} time setting must be hh:mm AM or hh:mm PM, for example "09:30 AM" or "04:00 PM"',
                  flush=True)
            print(BANNER, flush=True)

    def session_taken(self) -> None:
        """The same user logged in elsewhere (the other login is "session B")."""
        if not self.logged_in:
            self.settings.other_session = "yes"
            return
        # This session sees "Re-login is required" (ReloginDialogHandler) and then, logged in, the existing
        # session dialog: ExistingSessionDetectedDialogHandler's scenarios for "session A".
        self.disconnected = True
        self.broadcast_error(CONNECTIVITY_LOST, "Connectivity between IB and Trader Workstation has been lost.")
        log("Re-login to session")
        self.spawn(self.existing_session_when_logged_in())

    async def existing_session_when_logged_in(self) -> None:
        """Scenarios 1, 2, 5 and 6 of ExistingSessionDetectedDialogHandler."""
        await asyncio.sleep(self.settings.reconnect_delay)
        action = self._session_action()
        if action == "manual":
            log("User must choose whether to continue with this session (scenario 1)")
        elif action == "secondary":
            log("End this session and let the other session proceed (scenario 2)")
            self.exit(0)
        elif action == "primaryoverride":
            log("Other session may be primary, so end this session and let the other one proceed (scenario 6)")
            self.exit(0)
        else:
            log("Continue this session and let the other session exit (scenario 5)")
            self.reconnect()

    def server_outage(self) -> None:
        """IBKR's side drops the gateway (its nightly maintenance, the weekly reset of its servers).

        gateway: the API clients hear 1100 at once; after ``STANDIN_OUTAGE`` seconds (read now, from the knobs) either
        1102 (restored, data maintained) or, with ``STANDIN_OUTAGE_END=failed``, the dialog titled "Gateway" whose
        text starts "Connection to server failed" (the rest of its text is in no source). IBC's GatewayDialogHandler
        logs that text, then "Cold restart in progress", and runs StopTask with a cold restart: ibcstart.sh starts
        the Java process again into a full login.
        """
        if not self.logged_in or self.disconnected:
            return
        self.disconnected = True
        self.broadcast_error(CONNECTIVITY_LOST, "Connectivity between IB and Trader Workstation has been lost.")
        current = knobs(self.config_dir, os.environ)
        self.spawn(self.outage_ends(_seconds(current, "STANDIN_OUTAGE", 5.0),
                                    current.get("STANDIN_OUTAGE_END", "restored").strip().lower() == "failed"))

    async def outage_ends(self, seconds: float, failed: bool) -> None:
        """The outage's end: IBKR back (1102), or the Gateway's dialog and IBC's cold restart."""
        await asyncio.sleep(seconds)
        if not failed:
            self.reconnect()
            return
        log("Connection to server failed")
        log("Cold restart in progress")
        self.stop_task(None, cold_restart=True)

    def reconnect(self) -> None:
        """Back in session: tell the API clients."""
        self.disconnected = False
        self.broadcast_error(
            CONNECTIVITY_RESTORED,
            "Connectivity between IB and Trader Workstation has been restored - data maintained.",
        )

    async def restart_at_next_minute(self, writer: asyncio.StreamWriter, verb: str) -> None:
        """RestartTask: set the auto-restart time to the next minute; the gateway restarts itself then."""
        log(f"RestartTask: pauseOnly = {str(verb == 'PAUSE').lower()}")
        log(f"RestartTask: verb = {verb}")
        if self._restarting:
            log(f"{verb} already in progress")
            writer.write(f"ERROR {verb} already in progress\n".encode())
            return
        self._restarting = True
        if verb == "PAUSE":
            self._flag_file("PAUSE")
        writer.write(f"OK {verb} in progress\n".encode())
        while datetime.datetime.now().second >= 58:
            await asyncio.sleep(0.2)
        now = datetime.datetime.now()
        action = (now + datetime.timedelta(minutes=1)).replace(second=0, microsecond=0)
        shown = action.strftime("%I:%M %p")
        log(f"Setting auto-restart time to {shown}")
        writer.write(f"OK {verb} at {shown}\n".encode())
        await writer.drain()
        writer.close()
        self.spawn(self.auto_restart((action - now).total_seconds()))

    async def auto_restart(self, delay: float) -> None:
        """gateway: at the auto-restart time it writes ``autorestart`` one folder below the settings and exits.

        With STANDIN_RESUME=no it leaves none (IBC issue 290: the token was not kept), so ibcstart.sh's loop ends
        ("autorestart file not found: full authentication will be required") and so does the container. IBKR decides
        that at the restart, so the knob is read then.
        """
        await asyncio.sleep(delay)
        if _yes(knobs(self.config_dir, os.environ).get("STANDIN_RESUME", "yes")):
            folder = self.config_dir / _user_dir(self.settings.userid)
            folder.mkdir(exist_ok=True)
            (folder / "autorestart").write_text(f"{int(time.time())}\n")
        self.exit(0)

    def stop_task(self, writer: asyncio.StreamWriter | None, cold_restart: bool = False) -> None:
        """StopTask: halt before login, else exit through File > Close; a cold restart leaves its flag file first."""
        if writer is not None:
            writer.write(b"OK Shutting down: STOP command\n")
        if cold_restart:
            self._flag_file("COLDRESTART")
        if self.logged_in:
            log("Login has completed: exiting via [File, Close] menu")
        else:
            log("Login has not completed: exiting immediately")
        self.exit(0)

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
        """One API client: the handshake, startApi, then a session."""
        client_id: int | None = None
        try:
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
                if self.disconnected:
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
            elif kind == "3" and self.read_only:
                # gateway: placeOrder on a read-only API is refused with error 321.
                writer.write(self.error_frame(int(fields[2]) if len(fields) > 2 and fields[2].isdigit() else -1,
                                              READ_ONLY_REJECTED, "Error validating request.-'bB' : cause - The API "
                                              "interface is currently in Read-Only mode."))
            await writer.drain()

    async def serve_commands(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """IBC's command server: one command per line (CommandDispatcher), replies OK/ERROR (CommandChannel)."""
        try:
            while line := await reader.readline():
                command = line.decode(errors="replace").strip().upper()
                if command == "EXIT":
                    writer.write(b"OK Goodbye\n")
                    break
                if command == "STOP":
                    self.stop_task(writer)
                    break
                if command in ("RESTART", "PAUSE"):
                    await self.restart_at_next_minute(writer, command)
                    return
                if command in ("RECONNECTACCOUNT", "RECONNECTDATA"):
                    writer.write(b"OK \n")
                    if self.disconnected:
                        self.reconnect()
                elif command:
                    writer.write(b"ERROR Command invalid\n")
                    log_error(f"CommandServer: invalid command received: {command}")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def run(self) -> int:
        """Serve until this process ends; return its exit status."""
        s = self.settings
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, self.session_taken)
        loop.add_signal_handler(signal.SIGUSR2, self.server_outage)
        servers: list[asyncio.Server] = []
        if s.command_port:
            log(f"CommandServer is starting with port {s.command_port}")
            servers.append(await asyncio.start_server(self.serve_commands, s.bind_address or None, s.command_port))
            log("CommandServer started and is ready to accept commands")
        else:
            log("CommandServer is not started because the port is not configured")
        self.spawn(self.start())
        await self.stopped.wait()
        if self._api is not None:
            servers.append(self._api)
        for server in servers:
            server.close()
        for writer in list(self.clients.values()):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        return self.exit_code


def main(argv: list[str] | None = None) -> int:
    """Start as ibcstart.sh starts the Java process: IBC's config.ini, jtsConfigDir, session id, -Drestart."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("ibc_ini", type=Path)
    parser.add_argument("--jts-config-dir", type=Path, required=True)
    parser.add_argument("--session-id", default="")
    parser.add_argument("--restart", default="")
    args = parser.parse_args(argv)
    print("REHEARSAL STAND-IN for IBC and IB Gateway: not IBKR software; it never connects to IBKR", flush=True)
    settings = load_settings(read_ini(args.ibc_ini), knobs(args.jts_config_dir, os.environ))
    gateway = Gateway(settings, args.jts_config_dir, args.session_id, args.restart)
    return asyncio.run(gateway.run())


if __name__ == "__main__":
    sys.exit(main())
