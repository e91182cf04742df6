"""The watchdog on the VM: each tick looks at one gateway that should be up and alerts once per change of state.

systemd runs it every ``ib_gateway_watchdog_interval`` seconds (``ibgw-watchdog-<instance>.timer``) as
``python3 -m ibgw_on_host.watchdog <instance dir>/watchdog.json``, so a dead API is seen with no controller awake.
A gateway should be up when its container started after the last tidy stop (the stop script touches
``operator-stopped``; every start recreates or starts the container, so its StartedAt is later). A start or stop in
progress holds the instance's lock: that tick is skipped, so a login's wait never counts as "not ready".

Conditions (``decide``): the container exited (``container_exited``, or ``session_taken`` when IBC's log says so),
the handshake unanswered (``not_ready``) or answered without nextValidId (``api_hung``) for N ticks in a row,
disconnected from IBKR (1100/2110) for longer than the grace (IBKR's nightly maintenance stays quiet), ready again
(``recovered``). Only a change of the reported condition alerts, and a problem that lasts is said again every
``repeat_interval`` seconds until it clears: ``recovered`` says so once; a tidy stop ends it quietly (the operator
acted), also when a start followed before the next tick. The state between ticks is a small JSON file. For live,
``calendar`` adds ``signin_due`` and ``session_expiring`` from the weekly sign-in schedule.

Every tick hands its alerts to the spool (``alert_spool``), which retries what was not delivered, and pings the
heartbeat URL (healthchecks.io's convention: ``<url>`` while every watched gateway of the host is as expected,
``<url>/fail`` while one is not), so that a dead VM or watchdog is seen from outside.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from . import (
    alert_spool,
    gateway_container,
    gateway_log,
    ibc_command,
    incidents,
    login_ledger,
    session_clock,
    tws_probe,
)
from .alert import Alert, ping
from .host_files import json_object, keep_json, text
from .incidents import Event

READY = "ready"
IDLE = "idle"
CONTAINER_EXITED = "container_exited"
SESSION_TAKEN = "session_taken"
NOT_READY = "not_ready"
API_HUNG = "api_hung"
DISCONNECTED = "disconnected"
RECOVERED = "recovered"
SIGNIN_DUE = "signin_due"
SESSION_EXPIRING = "session_expiring"
PROBLEMS = frozenset({CONTAINER_EXITED, SESSION_TAKEN, NOT_READY, API_HUNG, DISCONNECTED})
# At most one soft restart an hour; after one, IBC's RESTART takes up to 62 s and the new login some more: the
# conditions it passes through meanwhile are not reported.
SOFT_RESTART_EVERY = timedelta(hours=1)
SOFT_RESTART_QUIET = timedelta(seconds=150)
PROBE_TIMEOUT = 4.0
COMMAND_TIMEOUT = 20
# A container start this soon after the Docker daemon's own start is put down to it (Docker restores containers
# with a restart policy as it starts), and a daemon start this soon after the machine's boot to the boot.
START_CAUSE_WINDOW = timedelta(minutes=2)

Run = Callable[[list[str]], tuple[int, str, str]]


@dataclass(frozen=True)
class Seen:
    """What one tick saw of the gateway."""

    expected: bool
    condition: str
    detail: str = ""
    container_id: str = ""
    restart_count: int = 0
    finished_at: datetime | None = None
    started_at: str = ""
    stopped_at: datetime | None = None


@dataclass
class State:
    """What the watchdog keeps between ticks (JSON; times as ISO strings)."""

    since: str = ""
    reported: str = IDLE
    unready: int = 0
    disconnected_since: str = ""
    container_id: str = ""
    restart_count: int = 0
    soft_restart_at: str = ""
    quiet_until: str = ""
    signin_due_for: str = ""
    expiring_for: str = ""
    problem_at: str = ""
    said_at: str = ""
    started_at: str = ""
    start_restart_count: int = 0


def decide(state: State, seen: Seen, now: datetime, settings: dict[str, Any]) -> tuple[State, list[Event], bool]:
    """The next state, the alerts of this tick, and whether to soft-restart a hung API now."""
    last_start = gateway_log.moment_if_set(state.started_at)
    if seen.expected and seen.stopped_at and last_start and seen.stopped_at > last_start:
        # A tidy stop and a new start between two ticks (a sign-in's stop and start): the stop ended the old problem.
        state = replace(state, reported=IDLE, unready=0, disconnected_since="")
    new = replace(state, since=state.since or now.isoformat())
    if not seen.expected:
        idle = replace(new, reported=IDLE, unready=0, disconnected_since="", container_id="", restart_count=0)
        return idle, [], False
    events = []
    if seen.container_id and seen.container_id == state.container_id and seen.restart_count > state.restart_count:
        events.append(Event(CONTAINER_EXITED, f"the container exited and Docker's restart policy started it again "
                                              f"(restart count {seen.restart_count})"))
    new = replace(new, container_id=seen.container_id, restart_count=seen.restart_count)
    condition = seen.condition
    new.unready = state.unready + 1 if condition in (NOT_READY, API_HUNG) else 0
    new.disconnected_since = (state.disconnected_since or now.isoformat()) if condition == DISCONNECTED else ""
    confirmed = condition
    if condition in (NOT_READY, API_HUNG) and new.unready < int(settings["not_ready_ticks"]):
        confirmed = state.reported
    if condition == DISCONNECTED and now < _disconnect_deadline(new.disconnected_since, settings):
        confirmed = state.reported
    if condition not in (READY, CONTAINER_EXITED, SESSION_TAKEN) and state.quiet_until and now < _time(
            state.quiet_until):
        confirmed = state.reported
    if (confirmed == CONTAINER_EXITED and not state.since and seen.finished_at is not None
            and seen.finished_at < now):
        # The first tick ever: a container that ended before the watch began is recorded, not alerted.
        return replace(new, reported=confirmed), events, False
    soft = confirmed == API_HUNG and bool(settings["soft_restart"]) and (
        not state.soft_restart_at or now - _time(state.soft_restart_at) >= SOFT_RESTART_EVERY)
    if confirmed != state.reported:
        if confirmed in PROBLEMS:
            events.append(Event(confirmed, seen.detail + _soft_note(settings, soft, state)
                                + _window_note(new.disconnected_since if confirmed == DISCONNECTED else "", settings)))
            new.problem_at = new.said_at = now.isoformat()
        elif confirmed == READY and state.reported in PROBLEMS:
            events.append(Event(RECOVERED, f"ready again after {state.reported}: {seen.detail}"))
    elif confirmed in PROBLEMS and _repeat_due(state, now, float(settings["repeat_interval"])):
        events.append(Event(confirmed, f"still {confirmed}, since {state.problem_at}: {seen.detail}"))
        new.said_at = now.isoformat()
    new.reported = confirmed
    if soft:
        new.soft_restart_at, new.quiet_until = now.isoformat(), (now + SOFT_RESTART_QUIET).isoformat()
    return new, events, soft


def _disconnect_deadline(since: str, settings: dict[str, Any]) -> datetime:
    """A disconnect is alerted after the grace, or after the grace past the end of the IBKR maintenance it began in."""
    began = _time(since)
    grace = timedelta(seconds=float(settings["disconnect_grace"]))
    window = session_clock.maintenance(began, settings["maintenance"])
    return max(began, window[1] if window else began) + grace


def _window_note(since: str, settings: dict[str, Any]) -> str:
    window = session_clock.maintenance(_time(since), settings["maintenance"]) if since else None
    if window is None:
        return ""
    return f"; it began during {window[0]}, which ended at {window[1].astimezone(UTC).isoformat(timespec='minutes')}"


def _repeat_due(state: State, now: datetime, every: float) -> bool:
    """A problem said at ``said_at`` is said again every ``every`` seconds (0: never)."""
    return every > 0 and bool(state.said_at) and now - _time(state.said_at) >= timedelta(seconds=every)


def _soft_note(settings: dict[str, Any], soft: bool, state: State) -> str:
    if not settings["soft_restart"] or (not soft and not state.soft_restart_at):
        return ""
    if soft:
        return "; soft restart through IBC RESTART (no 2FA)"
    return f"; no soft restart: the last one was at {state.soft_restart_at} (at most one an hour)"


def calendar(state: State, now: datetime, signed_in: datetime | None,
             settings: dict[str, Any]) -> tuple[State, list[Event]]:
    """Live's weekly calendar: the planned sign-in passed without one since the reset; the session about to end."""
    schedule = settings["signin_schedule"]
    planned = session_clock.last_weekly(now, str(schedule["day"]), session_clock.clock(schedule["time"]),
                                        session_clock.zone(schedule["time_zone"])).astimezone(UTC)
    reset = session_clock.last_reset(now).astimezone(UTC)
    events = []
    new = replace(state)
    if planned > reset and (signed_in is None or signed_in < reset) and state.signin_due_for != planned.isoformat():
        new.signin_due_for = planned.isoformat()
        events.append(Event(SIGNIN_DUE, f"the weekly sign-in planned for {planned.isoformat()} has not happened "
                                        f"since IBKR's reset at {reset.isoformat()}: run ibgw-ops live-signin"))
    before = float(settings["session_expiring_before"])
    if signed_in is not None and before > 0:
        until = session_clock.good_until(signed_in).astimezone(UTC)
        if until - timedelta(seconds=before) <= now < until and state.expiring_for != until.isoformat():
            new.expiring_for = until.isoformat()
            events.append(Event(SESSION_EXPIRING, f"the session signed in at {signed_in.isoformat()} is good until "
                                                  f"{until.isoformat()}: plan the next sign-in"))
    return new, events


def observe(settings: dict[str, Any], run: Run) -> Seen | None:
    """Inspect the container and, when it should be up and runs, probe its API; read IBC's log when not ready.

    None when nothing can be told: the probe met another client on its client id (a status or a start's probe).
    """
    found = gateway_container.inspect(run, "docker", settings["container"])
    started = gateway_log.moment_if_set(found["started_at"])
    # StartedAt as Docker wrote it, to compare with the ledger's (the last start by a verb).
    started_text = found["started_at"] if started is not None else ""
    try:
        stopped: float | None = os.stat(settings["stopped_marker"]).st_mtime
    except FileNotFoundError:
        stopped = None
    expected = started is not None and (stopped is None or started.timestamp() > stopped)
    common = {"expected": expected, "container_id": found["id"], "restart_count": found["restart_count"],
              "finished_at": gateway_log.moment_if_set(found["finished_at"]), "started_at": started_text,
              "stopped_at": datetime.fromtimestamp(stopped, UTC) if stopped is not None else None}
    if not expected:
        return Seen(condition=IDLE, **common)
    if not found["running"]:
        reason, _ = gateway_log.read_container(run, settings["container"])
        if reason == gateway_log.SESSION_TAKEN:
            return Seen(condition=SESSION_TAKEN, detail=f"the session went to another login; the container exited "
                                                        f"(exit code {found['exit_code']})", **common)
        oom = ", OOMKilled: the Java heap or the VM's memory is too small" if found["oom_killed"] else ""
        return Seen(condition=CONTAINER_EXITED, detail=f"container {settings['container']} exited (exit code "
                                                       f"{found['exit_code']}{oom})", **common)
    result = tws_probe.probe(settings["probe_host"], int(settings["port"]), client_id=int(settings["client_id"]),
                             timeout=PROBE_TIMEOUT)
    if result.state == tws_probe.CLIENT_ID_CLASH:
        return None
    condition = {tws_probe.READY: READY, tws_probe.HUNG: API_HUNG, tws_probe.DISCONNECTED: DISCONNECTED}.get(
        result.state, NOT_READY)
    detail = f"{result.state} ({result.description})"
    if condition != READY and gateway_log.read_container(run, settings["container"])[0] == gateway_log.SESSION_TAKEN:
        return Seen(condition=SESSION_TAKEN, detail=f"the session went to another login: {detail}", **common)
    return Seen(condition=condition, detail=detail, **common)


def tick(settings: dict[str, Any], now: datetime, run: Run) -> list[Alert]:
    """One look at the instance under its lock (skipped while a start or stop holds it); returns the alerts."""
    with open(settings["lock_file"], "a") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return []
        state = load(settings["state_file"])
        seen = observe(settings, run)
        if seen is None:
            return []
        told = _read_log(settings, state, seen, run)
        state, events, soft = decide(state, seen, now, settings)
        events += told.events
        if seen.started_at and seen.started_at != state.started_at:
            state = replace(state, started_at=seen.started_at, start_restart_count=seen.restart_count)
        if soft:
            took, said = ibc_command.send(settings["container"], "RESTART", int(settings["command_port"]), run)
            print(f"ibgw-watchdog: {settings['instance']}: soft restart (IBC RESTART): "
                  f"{'sent' if took else 'refused'}: {said}", flush=True)
        if settings["mode"] == "live":
            state, more = calendar(state, now, _signed_in(settings["signin_record"]), settings)
            events += more
        save(settings["state_file"], state)
    if told.stop:
        run([settings["stop_command"]])
    return [Alert(event.kind, settings["instance"], event.detail, host=settings["host"],
                  time=now.isoformat(timespec="seconds")) for event in events]


def _read_log(settings: dict[str, Any], state: State, seen: Seen, run: Run) -> incidents.Review:
    """Review the log written since the ledger's ``read_to`` (the last verb's start or the last tick), and record it.

    The first tick with no ledger (a gateway started before the watchdog kept one) starts the record from now.
    """
    path = settings.get("logins_file", "")
    if not path or not seen.expected:
        return incidents.Review()
    ledger = login_ledger.load(path)
    found = gateway_log.read_since(run, settings["container"], ledger.read_to) if ledger.read_to else None
    if found is None:
        ledger.read_to = ledger.read_to or gateway_log.stamp()
        login_ledger.save(path, ledger)
        return incidents.Review()
    happened, ledger.read_to = found
    started = gateway_log.moment_if_set(seen.started_at)
    cause = ""
    # Docker raises the restart count when its restart policy restarts the container (``decide`` alerts that),
    # possibly a tick before the new start shows.
    if (started is not None and state.started_at and seen.started_at not in (state.started_at, ledger.started_at)
            and seen.restart_count <= state.start_restart_count):
        cause = _start_cause(started, run)
    told = incidents.review(happened, settings, (seen.started_at, cause),
                            (ledger.pending_cause, ledger.pending_kind, ledger.pending_exit))
    ledger.pending_cause, ledger.pending_kind, ledger.pending_exit = told.pending
    if started is not None and cause:
        told.events.insert(0, Event(incidents.UNPLANNED_START, f"{settings['instance']} started at "
                                    f"{started.isoformat(timespec='seconds')} without an ibgw-ops verb: {cause}"
                                    + ("; a live start is a full login: a 2FA push follows"
                                       if settings["mode"] == "live" else "")))
    for at, kind, source in told.logins:
        ledger.add(at, kind, source)
    login_ledger.save(path, ledger)
    if settings["mode"] == "live" and told.session is not None:
        if told.session:
            login_ledger.write_signin(settings["signin_record"], told.session)
        elif os.path.exists(settings["signin_record"]):
            os.remove(settings["signin_record"])
    return told


def _start_cause(started: datetime, run: Run) -> str:
    """Why a container started that no verb and no restart after an exit started: a boot, a Docker restart, a hand."""
    rc, out, _ = run(["systemctl", "show", "docker", "--property=ExecMainStartTimestamp", "--timestamp=unix"])
    value = out.strip().partition("=@")[2]
    daemon = datetime.fromtimestamp(int(value), UTC) if rc == 0 and value.isdigit() else None
    if daemon is None or not daemon <= started <= daemon + START_CAUSE_WINDOW:
        return "a start outside ibgw-ops (docker start or compose up by hand)"
    booted = _booted()
    if booted is not None and booted <= daemon <= booted + START_CAUSE_WINDOW:
        return f"Docker's restart policy, after the machine booted at {booted.isoformat(timespec='seconds')}"
    return f"Docker's restart policy, after the Docker daemon restarted at {daemon.isoformat()}"


def _booted(proc: str = "/proc") -> datetime | None:
    """When the machine started, as its first process's start: the VM's boot (a system container's own start)."""
    try:
        with open(f"{proc}/stat") as stat:
            boot = next(int(line.split()[1]) for line in stat if line.startswith("btime "))
        with open(f"{proc}/1/stat") as first:
            ticks = int(first.read().rpartition(")")[2].split()[19])
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    return datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"), UTC)


def load(path: str) -> State:
    """The kept state; a fresh one when there is none or it is unreadable."""
    found = json_object(path)
    return State(**{key: value for key, value in found.items() if key in State.__dataclass_fields__})


def save(path: str, state: State) -> None:
    """Atomically, root only."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    keep_json(path, asdict(state))


def heartbeat(settings: dict[str, Any]) -> str:
    """Ping the heartbeat URL, ``<url>/fail`` while a watched gateway of the host has a problem.

    "" when it took the ping (or none is set), else why not (never the URL). The body names each instance's state.
    """
    url = text(settings["heartbeat_file"]).strip()
    if not url:
        return ""
    states = {os.path.basename(path).removesuffix(".json"): load(path).reported for path in settings["peers"]}
    healthy = not set(states.values()) & PROBLEMS
    body = ", ".join(f"{name}: {reported}" for name, reported in sorted(states.items()))
    if not healthy:
        parts = urllib.parse.urlsplit(url)
        url = urllib.parse.urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/fail"))
    return ping(url, body, float(settings["alerts"]["webhook_timeout"]))


def _signed_in(path: str) -> datetime | None:
    record = text(path)
    return session_clock.parse_utc(record) if record else None


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _run(argv: list[str]) -> tuple[int, str, str]:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=COMMAND_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, "", str(exc)
    return done.returncode, done.stdout, done.stderr


def main(argv: Sequence[str]) -> int:
    """SETTINGS_FILE: one tick; exits 0 whatever it found (the alerts are the outcome), 2 for a bad settings file."""
    if len(argv) != 1:
        print("usage: python3 -m ibgw_on_host.watchdog SETTINGS_FILE", file=sys.stderr)
        return 2
    try:
        with open(argv[0]) as source:
            settings = json.load(source)
    except (OSError, ValueError) as exc:
        print(f"ibgw-watchdog: cannot read {argv[0]}: {exc}", file=sys.stderr)
        return 2
    now = datetime.now(UTC)
    alert_spool.emit(tick(settings, now, _run), settings["alerts"], "ibgw-watchdog", _run, now)
    failed = heartbeat(settings)
    if failed:
        print(f"ibgw-watchdog: the heartbeat ping failed ({failed})", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
