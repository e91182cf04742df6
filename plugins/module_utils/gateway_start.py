"""Bring one gateway up and wait until its API answers: the one start of the modules and of the timers on the VM.

The ``ibgw_gateway_up`` module runs it for ``up``, ``paper-up`` and the sign-in; a paper window's timer runs it on the
VM as ``python3 -m ibgw_on_host.gateway_start SETTINGS --until HH:MM``. Both read the instance's start settings
(``start.json``, written by deploy; no secret in it), so a window's start is the same path as ``paper-up``: the lock,
the dead-man switch, the recreate with the restart policy held at "no", the readiness wait that stops at IBC's first
"Login failed" (IBC would try the same password again) or when the session is left to another login.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import IO, Any, NoReturn

from . import alert, alert_spool, gateway_container, gateway_log, ibc_command, login_ledger, session_clock, tws_probe

RunCommand = Callable[..., tuple[int, str, str]]
# What a failed start's reason raises as an alert (the role's ib_gateway_failures says the same for its runs).
ALERTS = {"session_taken": "session_taken", "login_failed": "login_failed", "twofa_pending": "2fa_needed"}

# How Docker and compose say that an image is not there (start never pulls: --pull never).
MISSING_IMAGE = re.compile(r"no such image|image .* not found|pull access denied", re.IGNORECASE)
# How long IBC's RESTART keeps the old session (RestartTask: the next minute, or the one after from second 58).
RESTART_LEAD = 62.0
# Seconds a timer's command may take before it is killed: its docker, systemctl and apprise calls take seconds (the
# longest, docker stop --time 10 and IBC's answer through docker exec); a hung one must not hold the timer forever.
COMMAND_TIMEOUT = 120.0
# The exit code of a command killed at its timeout (as coreutils' timeout gives).
TIMED_OUT = 124


class StartFailed(Exception):
    """The start failed: its message and the fields the caller reports (reason, log_tail, the probe's verdict)."""

    def __init__(self, msg: str, **fields: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.fields = fields


class Host:
    """What a start needs from where it runs: its settings and a way to run commands."""

    def __init__(self, params: Mapping[str, Any], run: RunCommand) -> None:
        self.params = params
        self.run = run

    def fail(self, msg: str, **fields: Any) -> NoReturn:
        """Give up: the caller reports ``msg`` and ``fields``."""
        raise StartFailed(msg, **fields)


def start(params: Mapping[str, Any], run: RunCommand) -> dict[str, Any]:
    """Lock, arm the dead-man switch, start unless running, then wait; the outcome, or StartFailed."""
    host = Host(params, run)
    if not os.path.isfile(params["compose_file"]):
        host.fail(f"{params['compose_file']} is missing: the gateway is not deployed on this host; apply "
                  "playbooks/site.yml first.", deployed=False)
    with open(params["lock_file"], "a") as lock:
        _lock(host, lock)
        if params["deadman_seconds"] > 0:
            _arm_deadman(host)
        return _up(host)


def _up(host: Host) -> dict[str, Any]:
    """Start or soft-restart, then wait while following the log: IBC's lines end the wait before the probe can."""
    params = host.params
    container = params["container"]
    soft = params["soft_restart"]
    running = _container_state(host, container)[0] == "running"
    since = time.time()
    if soft:
        _soft_restart(host, running)
    started = False if running else _start(host)
    first = _container_state(host, container)
    timeout = params["wait"] + (RESTART_LEAD if soft else 0.0)
    deadline = time.monotonic() + timeout
    watch = gateway_log.Watch()
    # A gateway left running is judged by its whole log; a started or restarted one by what it wrote since.
    with gateway_log.follow(container, since if started or soft else None) as log:

        def still_starting() -> bool:
            watch.feed(log.read())
            return (watch.reason not in gateway_log.FINAL and first[0] == "running"
                    and _container_state(host, container) == first)

        # The old session answers until IBC restarts: only a login after RESTART is the new session's.
        while soft and not watch.logged_in and time.monotonic() < deadline and still_starting():
            time.sleep(params["interval"])
        if soft and not watch.logged_in:
            result = tws_probe.probe(params["host"], params["port"], client_id=params["client_id"])
        else:
            result = tws_probe.wait_until_ready(params["host"], params["port"], client_id=params["client_id"],
                                      timeout=deadline - time.monotonic(), interval=params["interval"],
                                      still_starting=still_starting)
        watch.feed(log.read())
    _account(host, watch, result.ready and (watch.logged_in or not soft), started or soft)
    if watch.reason == gateway_log.LOGIN_FAILED:
        # IBC relaunches itself in the container and tries the same password again as soon as its login dialog
        # is back: stop it now, not after the round trip to the caller's tidy stop (nothing is logged in).
        host.run(["docker", "stop", "--time", "10", container])
    last = _container_state(host, container)
    ready = result.ready and (watch.logged_in or not soft)
    outcome = {**result.as_dict(), "ready": ready, "started": started, "restarted": soft,
               "restart_pending": os.path.exists(params["pending_marker"]), "container_state": " ".join(last),
               "container_changed": last != first}
    if not ready:
        if watch.reason in gateway_log.FINAL:
            what = watch.explain()
        elif outcome["container_changed"] or first[0] != "running":
            what = f"container {container} stopped or restarted while starting ({outcome['container_state']})"
        elif soft and not watch.logged_in:
            what = f"IBC logged no new login within {timeout:g} s of RESTART"
        else:
            what = f"not ready within {timeout:g} s"
        host.fail(f"{what}: {result.state} ({result.description})", reason=watch.reason or "not_ready",
                  log_tail=list(watch.quoted), changed=started or soft, **outcome)
    if started:
        _settle(host, outcome)
    return {"changed": started or soft, **outcome}


def _settle(host: Host, outcome: dict[str, Any]) -> None:
    """A fresh start that became ready: its sign-in time (live), then the instance's own restart policy."""
    params = host.params
    if params["signin_record"]:
        login_ledger.write_signin(params["signin_record"], datetime.now(UTC).isoformat(timespec="seconds"))
    if params["restart_policy"] != "no":
        rc, out, err = host.run(["docker", "update", "--restart", params["restart_policy"], params["container"]])
        if rc != 0:
            host.fail(f"docker update --restart {params['restart_policy']} failed: {err.strip() or out.strip()}",
                      reason="failed", changed=True, **outcome)


def _account(host: Host, watch: gateway_log.Watch, ready: bool, acted: bool) -> None:
    """Record this start's login in the ledger and that the log up to now is accounted for (the watchdog reads on)."""
    params = host.params
    path = params.get("logins_file", "")
    if not path:
        return
    ledger = login_ledger.load(path)
    ledger.read_to = gateway_log.stamp()
    ledger.started_at = gateway_container.inspect(host.run, "docker", params["container"])["started_at"]
    if ready and acted:
        ledger.add(datetime.now(UTC).isoformat(timespec="seconds"),
                   login_ledger.FULL if watch.full_login else login_ledger.RESUMED,
                   params.get("source") or ("IBC RESTART by ibgw-ops" if params["soft_restart"] else
                                            "a start by ibgw-ops"))
    login_ledger.save(path, ledger)


def _lock(host: Host, lock: IO[str]) -> None:
    deadline = time.monotonic() + host.params["lock_timeout"]
    while True:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                host.fail(f"another start or stop of {host.params['container']} held the lock "
                          f"{host.params['lock_file']} for {host.params['lock_timeout']:g} s")
            time.sleep(0.2)


def _arm_deadman(host: Host) -> None:
    """(Re)arm the transient timer; --collect removes its units once they have run, whatever the outcome."""
    params = host.params
    unit = params["deadman_unit"]
    host.run(["systemctl", "stop", f"{unit}.timer"])
    host.run(["systemctl", "reset-failed", f"{unit}.timer", f"{unit}.service"])
    argv = ["systemd-run", "--collect", f"--unit={unit}", f"--on-active={params['deadman_seconds']}s",
            "--timer-property=AccuracySec=1s", f"--description=ibgw-ops dead-man switch for {params['container']}",
            params["stop_command"]]
    rc, out, err = host.run(argv)
    if rc != 0:
        host.fail(f"{' '.join(argv)} failed: {err.strip() or out.strip()}", rc=rc)


def _soft_restart(host: Host, running: bool) -> None:
    """IBC RESTART through its command server; the gateway restarts itself within RESTART_LEAD seconds."""
    params = host.params
    if not running:
        host.fail(f"{params['container']} is not running: a soft restart continues a running session; start it "
                  "(a live login needs 2FA: ibgw-ops live-signin)", reason="failed")
    took, said = ibc_command.send(params["container"], "RESTART", params["command_port"], host.run)
    if not took:
        host.fail(f"IBC's command server did not accept RESTART: {said}", reason="failed", changed=False)


def _start(host: Host) -> bool:
    params = host.params
    gateway_container.keep_previous(host.run, params["container"], params["previous_log"],
                                    params["previous_state"], params["previous_lines"])
    for argv in (params["compose"] + ["create", "--force-recreate", "--no-build", "--pull", "never"],
                 ["docker", "update", "--restart", "no", params["container"]],
                 ["docker", "start", params["container"]]):
        rc, out, err = host.run(argv)
        if rc != 0 and MISSING_IMAGE.search(err + out):
            host.fail(f"image {params['image']} is not on this host, and a start never pulls: run deploy "
                      "(playbooks/site.yml), which pulls it or loads ib_gateway_image_archive", rc=rc, reason="failed")
        if rc != 0:
            host.fail(f"{' '.join(argv)} failed: {err.strip() or out.strip()}", rc=rc, changed=True, reason="failed")
    if os.path.exists(params["pending_marker"]):
        os.remove(params["pending_marker"])
    return True


def _container_state(host: Host, name: str) -> tuple[str, str]:
    """(status, restart count) of a container; ("absent", "") when there is none."""
    rc, out, _ = host.run(["docker", "inspect", "--format", "{{.State.Status}} {{.RestartCount}}", name])
    if rc != 0:
        return ("absent", "")
    status, _, restarts = out.strip().partition(" ")
    return (status, restarts)


def run_bounded(argv: Sequence[str]) -> tuple[int, str, str]:
    """A start's command (a timer's or ibgw_gateway_up's), killed after COMMAND_TIMEOUT seconds."""
    return _bounded(argv, COMMAND_TIMEOUT)


def _bounded(argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
    """A command's exit code, stdout and stderr, or TIMED_OUT and why.

    A command still running after ``timeout`` seconds is killed with what it started (its own process group).
    """
    with subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):  # it ended at the last moment
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            return TIMED_OUT, "", f"{' '.join(argv)} did not finish within {timeout:g} s and was killed"
    return process.returncode, out, err


def _stop(params: Mapping[str, Any]) -> tuple[int, str, str]:
    """The instance's stop script, given its longest legitimate run before it is killed.

    That is the lock's wait, the grace period twice (docker wait after IBC's STOP, then compose stop) and
    COMMAND_TIMEOUT for its other calls (IBC's STOP, docker update and inspect).
    """
    timeout = float(params["lock_timeout"]) + 2 * float(params["stop_grace_period"]) + COMMAND_TIMEOUT
    return _bounded([params["stop_command"]], timeout)


def main(argv: Sequence[str]) -> int:
    """A timer's start on the VM: start and wait; on failure stop again (no login held, no more pushes), alert.

    A paper window's start (``--until``: the dead-man switch until the window's end), or live's weekly sign-in
    (``--signin``, ib_gateway_signin_schedule's on_vm): a tidy stop first, then one 2FA push with its deadline.
    """
    parser = argparse.ArgumentParser(prog="python3 -m ibgw_on_host.gateway_start")
    parser.add_argument("settings", help="the instance's start.json")
    parser.add_argument("--until", metavar="HH:MM", help="arm the dead-man switch until then (the window's end)")
    parser.add_argument("--time-zone", default="UTC", help="the zone of --until and of the sign-in's deadline")
    parser.add_argument("--signin", action="store_true", help="live's weekly sign-in: stop, start, one 2FA push")
    args = parser.parse_args(argv)
    with open(args.settings) as settings:
        params = json.load(settings)
    if args.until:
        now = datetime.now(UTC)
        end = session_clock.next_daily(now, session_clock.clock(args.until), session_clock.zone(args.time_zone))
        params["deadman_seconds"] = int((end - now).total_seconds()) + 1
    instance = params["container"].removeprefix("ibgw-")
    what, program = ("a window's start", "ibgw-window")
    if args.signin:
        what, program = ("the VM's weekly sign-in", "ibgw-signin")
        ended = _begin_signin(params, instance, session_clock.zone(args.time_zone))
        if ended is not None:
            return ended
    params["source"] = what if args.signin else "a paper window's timer"
    try:
        outcome = start(params, run_bounded)
    except StartFailed as failed:
        _stop(params)
        kind = ALERTS.get(str(failed.fields.get("reason")), "not_ready")
        why = "2FA not approved in time: " if failed.fields.get("reason") == gateway_log.TWOFA_PENDING else ""
        failure = alert.Alert(kind, instance, f"{what} failed: {why}{failed.msg}; {instance} is stopped again",
                              host=params["alert_host"])
        alert_spool.emit([failure], params["alerts"], program, run_bounded, datetime.now(UTC))
        return 1
    print(f"ready: {instance} on {params['host']}:{params['port']} (accounts {','.join(outcome['accounts']) or '-'})")
    if args.signin:
        print(f"signed in: {instance}'s weekly sign-in is recorded in {params['signin_record']}; the session lasts "
              f"until {session_clock.good_until(datetime.now(UTC)).isoformat(timespec='seconds')} (IBKR's weekly "
              "reset)", flush=True)
    return 0


def _begin_signin(params: Mapping[str, Any], instance: str, tz: tzinfo) -> int | None:
    """Before the sign-in's start: the exit code when it ends here, None when the start goes on.

    Refused inside the protected window; nothing to do for a session signed in since IBKR's reset (another push would
    be wasted); else live is stopped tidily and the alert gives the 2FA deadline.
    """
    def say(kind: str, detail: str) -> None:
        said = alert.Alert(kind, instance, f"the VM's weekly sign-in {detail}", host=params["alert_host"])
        alert_spool.emit([said], params["alerts"], "ibgw-signin", run_bounded, datetime.now(UTC))

    now = datetime.now(UTC)
    window = params.get("protected_window") or {}
    if window and session_clock.Window.parse(dict(window)).contains(now):
        say("signin_due", f"was refused: it falls inside the protected window ({', '.join(window['days'])} "
                          f"{window['start']}-{window['end']} {window['time_zone']}); nothing was changed")
        return 1
    try:
        with open(params["signin_record"]) as record:
            signed_in = session_clock.parse_utc(record.read())
    except OSError:
        signed_in = None
    running = _container_state(Host(params, run_bounded), params["container"])[0] == "running"
    if running and signed_in is not None and signed_in >= session_clock.last_reset(now):
        print(f"already signed in: {instance} signed in at {signed_in.isoformat()}, after IBKR's weekly reset; "
              "nothing to do", flush=True)
        return 0
    rc, out, err = _stop(params)
    if rc != 0:
        say("not_ready", f"could not stop {instance} first: {err.strip() or out.strip()}; nothing was started")
        return 1
    deadline = datetime.now(UTC) + timedelta(seconds=float(params["wait"]))
    say("2fa_needed", f"started: approve the IBKR Mobile notification now, by {deadline.astimezone(tz):%H:%M:%S %Z} "
                      "at the latest")
    return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
