"""What a gateway's container log says about its login, read from IBC's own lines only.

The role's modules use it on the VM. IBC writes ``yyyy-MM-dd HH:mm:ss:SSS IBC: <text>`` (Utils.formatMessage).
The rest of the log (socat's two lines per refused connection while the API is not listening, run.sh's ``.>``
lines, ibcstart.sh's) says nothing about the login and soon outnumbers IBC's lines, so it is neither classified
nor quoted. The newest telling line
decides: a login that completed after a failure is fine; a session taken after a login is taken.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType

# Container log lines read_container reads (socat adds about 8 a second while a probe polls a closed API), and
# how many of IBC's lines a failure message quotes.
TAIL = 2000
QUOTED = 8
SESSION_TAKEN = "session_taken"
LOGIN_FAILED = "login_failed"
TWOFA_PENDING = "twofa_pending"
# Not a failure: a later line than any failure; classify gives None for it.
LOGGED_IN = "logged_in"
# After these, waiting for the API is pointless: IBC retries the same password (repeated failures lock IBKR
# accounts), or the session belongs to another login.
FINAL = frozenset({LOGIN_FAILED, SESSION_TAKEN})

IBC_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3} IBC: (.*)")
# TooManyFailedLoginAttemptsDialogHandler logs IBKR's dialog text: "... Please wait 53 seconds before ..." or
# "... Please wait 4 minutes & 47 seconds before ...".
TOO_MANY = re.compile(r"Too many failed login attempts\. Please wait (.+?) before")
# IBC's texts that tell (LoginFailedDialogHandler, ExistingSessionDetectedDialogHandler, LoginManager). Existing
# session scenarios 1 (a human must choose), 2, 4 and 6 leave the session to the other login; 3 and 5 go on.
EVENTS = (
    (LOGIN_FAILED, re.compile(r"Login failed|Too many failed login attempts\..*")),
    (SESSION_TAKEN, re.compile(r".*\(scenario [1246]\)")),
    (TWOFA_PENDING, re.compile(r"Second Factor Authentication initiated")),
    (LOGGED_IN, re.compile(r"Login has completed")),
)
# AbstractLoginHandler.initiateLogin logs each login it drives through the login dialog: a full login (a restart
# that resumes the session with -Drestart shows no dialog to drive).
FULL_LOGIN = "full_login"
LOGIN_ATTEMPT = re.compile(r"Login attempt: \d+")


class Watch:
    """The login's course, fed the log's lines in order."""

    def __init__(self) -> None:
        self.event: str | None = None
        self.telling = ""
        self.wait = ""
        self.logged_in = False
        self.full_login = False
        self.quoted: deque[str] = deque(maxlen=QUOTED)

    @property
    def reason(self) -> str | None:
        """The failure the newest telling line gives, or None (nothing told yet, or logged in)."""
        return None if self.event == LOGGED_IN else self.event

    def feed(self, lines: Iterable[str]) -> None:
        """Take IBC's lines in; ``logged_in`` stays true once any login completed."""
        for line in lines:
            found = IBC_LINE.search(line)
            if not found:
                continue
            text = found.group(1).strip()
            self.quoted.append(line.strip())
            self.full_login = self.full_login or bool(LOGIN_ATTEMPT.fullmatch(text))
            event = next((event for event, pattern in EVENTS if pattern.fullmatch(text)), None)
            if event is not None:
                self.event, self.telling = event, text
                too_many = TOO_MANY.match(text)
                self.wait = too_many.group(1) if too_many else ""
                self.logged_in = self.logged_in or event == LOGGED_IN

    def explain(self) -> str:
        """IBC's telling line for a message, with what IBKR's brake on failed logins means."""
        return explain(self.telling)


def explain(telling: str) -> str:
    """One of IBC's telling texts for a message, with what IBKR's brake on failed logins means."""
    too_many = TOO_MANY.match(telling)
    if too_many:
        return (f"IBC: {telling}: the IBKR account may be locked; IBKR asked to wait {too_many.group(1)} "
                "before the next login")
    return f"IBC: {telling}"


def classify(lines: Iterable[str]) -> str | None:
    """The failure the newest telling IBC line gives, or None."""
    watch = Watch()
    watch.feed(lines)
    return watch.reason


def read_container(run: Callable[[list[str]], tuple[int, str, str]], container: str) -> tuple[str | None, list[str]]:
    """What the container's last log lines tell, and IBC's last few lines to quote.

    ``run`` runs a command the caller's way (AnsibleModule.run_command on the host).
    """
    rc, out, err = run(["docker", "logs", "--tail", str(TAIL), container])
    if rc != 0:
        return None, []
    watch = Watch()
    watch.feed((out + err).splitlines())
    return watch.reason, list(watch.quoted)


class Follower:
    """A command's output (``docker logs --follow``) as it grows, read without blocking.

    One process for the whole wait: on Docker 20.10 it cost 0.04 s of CPU in 20 s against 1.6 s for
    ``docker logs --since`` every 0.25 s (and the daemon rereads the log file for each of those).
    """

    def __init__(self, argv: list[str]) -> None:
        self._fd, writer = os.pipe()
        self._process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=writer, stderr=writer)
        os.close(writer)
        os.set_blocking(self._fd, False)
        self._partial = b""

    def read(self) -> list[str]:
        """The complete lines written since the last read."""
        chunks = [self._partial]
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        *lines, self._partial = b"".join(chunks).split(b"\n")
        return [line.decode(errors="replace") for line in lines]

    def close(self) -> None:
        """End the command (it never ends by itself while the container runs)."""
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._fd)

    def __enter__(self) -> Follower:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def follow(container: str, since: float | None) -> Follower:
    """Follow the container's log from ``since`` (a time.time() value; None for its whole log)."""
    start = [] if since is None else ["--since", f"{since:.6f}"]
    return Follower(["docker", "logs", "--follow", *start, container])


# What the gateway's log tells between the verbs (the watchdog reads it at each tick): the lines of the image's
# ibcstart.sh loop around the Java process (plain ``echo``, no ``IBC:``) and IBC's own.
JAVA_ENDED = "java_ended"
RESUMING = "resuming"
NOT_RESUMING = "not_resuming"
COLD_RESTART = "cold_restart"
READ_ONLY = "read_only"
READ_ONLY_UNKNOWN = "read_only_unknown"
SERVER_FAILED = "server_failed"
SESSION_KEPT = "session_kept"
LOOP_LINES = (
    (JAVA_ENDED, re.compile(r"IBC returned exit status \d+")),
    (RESUMING, re.compile(r"autorestart file found at .*: authentication will not be required")),
    (NOT_RESUMING, re.compile(r"autorestart file not found: full authentication will be required")),
    (COLD_RESTART, re.compile(r"IBC will cold-restart shortly")),
)
IBC_LINES = (
    *EVENTS,
    (FULL_LOGIN, LOGIN_ATTEMPT),
    # ConfigureReadOnlyApiTask: IBC applies ReadOnlyApi only when it is set, and says what the checkbox is.
    (READ_ONLY, re.compile(r"Read-Only API checkbox is (?:already|now) set to: true")),
    (READ_ONLY_UNKNOWN, re.compile(r"could not find Read-Only API checkbox")),
    # GatewayDialogHandler logs the generic dialog's text; this one makes IBC cold-restart into a full login.
    (SERVER_FAILED, re.compile(r"Connection to server failed.*")),
    # ExistingSessionDetectedDialogHandler, logged in: the same user logged in elsewhere and this session stays
    # (ExistingSessionDetectedAction primary), so the other login is ended.
    (SESSION_KEPT, re.compile(r"Continue this session and let the other session exit \(scenario 5\)")),
)
# ``docker logs --timestamps``: Docker's fixed-width RFC 3339 time in UTC with nanoseconds, so text order is time order.
STAMPED = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (.*)")


@dataclass(frozen=True)
class Happening:
    """One telling line: Docker's time of it, its kind, and its words (IBC's text without the prefix)."""

    at: str
    kind: str
    text: str


def happenings(stamped: Iterable[str], after: str) -> list[Happening]:
    """The telling lines stamped after ``after`` (a Docker time; "" for all), oldest first."""
    found = []
    for line in stamped:
        parts = STAMPED.match(line.rstrip("\r"))
        if not parts or parts.group(1) <= after:
            continue
        at, text = parts.groups()
        ibc = IBC_LINE.match(text)
        table = IBC_LINES if ibc else LOOP_LINES
        text = ibc.group(1).strip() if ibc else text.strip()
        kind = next((kind for kind, pattern in table if pattern.fullmatch(text)), None)
        if kind is not None:
            found.append(Happening(at, kind, text))
    return sorted(found, key=lambda happening: happening.at)


def read_since(run: Callable[[list[str]], tuple[int, str, str]], container: str,
               after: str) -> tuple[list[Happening], str] | None:
    """The container's telling lines after ``after``, and the time its log was read up to; None without a log.

    Both of the log's streams, merged by time (IBC prints to stdout, ibcstart.sh's errors go to stderr).
    """
    read_to = stamp()
    rc, out, err = run(["docker", "logs", "--timestamps", "--since", unix(after) if after else "0", "--until",
                        unix(read_to), container])
    if rc != 0:
        return None
    return happenings((out + "\n" + err).splitlines(), after), read_to


def stamp(moment: datetime | None = None) -> str:
    """A time as Docker stamps log lines (now by default)."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000Z"


def unix(docker_time: str) -> str:
    """Docker's stamp as the seconds.nanoseconds that ``docker logs --since`` takes."""
    head, _, fraction = docker_time.rstrip("Z").partition(".")
    seconds = int(datetime.fromisoformat(head).replace(tzinfo=UTC).timestamp())
    return f"{seconds}.{(fraction + '0' * 9)[:9]}"


def moment(docker_time: str) -> datetime:
    """Docker's stamp as an aware datetime (microseconds)."""
    head, _, fraction = docker_time.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(fraction + '000000')[:6]}+00:00")


def moment_if_set(docker_time: str) -> datetime | None:
    """``moment``, or None for Docker's zero time (a container never started or stopped) or nothing."""
    return None if not docker_time or docker_time.startswith("0001-") else moment(docker_time)
