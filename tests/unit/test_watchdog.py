"""The VM's watchdog: one alert per change of state, the disconnect grace, recovered, the rate-limited soft restart,
live's calendar (times injected in UTC), and a tick against a real stand-in's API with docker played by a fake."""

from __future__ import annotations

import fcntl
import json
import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from ibgw_ops.on_host import alert_spool, gateway_log, login_ledger, session_clock, watchdog
from ibgw_ops.on_host.watchdog import Seen, State, decide
from tests.support.layout import role_defaults
from tests.support.webhook import Receiver

T0 = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # a Wednesday
SETTINGS = {"not_ready_ticks": 3, "disconnect_grace": 300, "soft_restart": False, "session_expiring_before": 3600,
            "signin_schedule": {"day": "sun", "time": "17:00", "time_zone": "America/New_York"},
            "repeat_interval": 0, "maintenance": role_defaults("ib_gateway")["ib_gateway_ibkr_maintenance"]}
READY = Seen(expected=True, condition=watchdog.READY, detail="ready", container_id="c1")


def run_ticks(seen: list[Seen], *, every: float = 30, settings: dict | None = None,
              state: State | None = None) -> tuple[State, list[list[str]], list[bool]]:
    """Feed one observation per tick; the kinds alerted at each tick and whether it soft-restarted."""
    state = state or State(since=T0.isoformat())
    kinds, softs = [], []
    for index, observation in enumerate(seen):
        state, events, soft = decide(state, observation, T0 + timedelta(seconds=every * index),
                                     {**SETTINGS, **(settings or {})})
        kinds.append([event.kind for event in events])
        softs.append(soft)
    return state, kinds, softs


def seen(condition: str, **extra: object) -> Seen:
    return Seen(**{"expected": True, "condition": condition, "detail": condition, "container_id": "c1", **extra})


def alerted(kinds: list[list[str]]) -> list[str]:
    return [kind for tick in kinds for kind in tick]


def test_an_exited_container_alerts_once_with_its_exit_code_and_never_again_while_it_stays_down():
    exited = seen(watchdog.CONTAINER_EXITED, detail="container ibgw-paper exited (exit code 137)",
                  finished_at=T0)
    state = State(since=T0.isoformat())
    _, events, _ = decide(state, exited, T0, SETTINGS)
    assert [(e.kind, e.detail) for e in events] == [("container_exited", "container ibgw-paper exited (exit code 137)")]
    _, kinds, _ = run_ticks([READY, exited, exited, exited, exited])
    assert kinds == [[], ["container_exited"], [], [], []]


def test_a_tidy_stop_and_a_start_between_two_ticks_end_the_old_problem_quietly():
    old_start = gateway_log.stamp(T0 - timedelta(hours=2))
    state = State(since=T0.isoformat(), reported=watchdog.NOT_READY, unready=40, started_at=old_start)
    new_start = gateway_log.stamp(T0 - timedelta(seconds=20))
    _, events, _ = decide(state, seen(watchdog.READY, started_at=new_start, stopped_at=T0 - timedelta(seconds=25)),
                          T0, SETTINGS)
    assert events == [], "the sign-in's stop ended not_ready; its new session is no recovery"
    _, events, _ = decide(state, seen(watchdog.READY, started_at=old_start, stopped_at=T0 - timedelta(hours=3)),
                          T0, SETTINGS)
    assert [event.kind for event in events] == ["recovered"], "no stop since: the same run got better"


def test_not_ready_alerts_only_after_n_ticks_in_a_row_and_ready_again_is_one_recovered():
    not_ready = seen(watchdog.NOT_READY)
    _, kinds, _ = run_ticks([READY, not_ready, not_ready, READY, not_ready, not_ready, not_ready, not_ready, READY,
                             READY])
    assert kinds == [[], [], [], [], [], [], ["not_ready"], [], ["recovered"], []]


def test_a_disconnect_shorter_than_the_grace_alerts_nothing_and_a_longer_one_alerts_once():
    down = seen(watchdog.DISCONNECTED)
    short = [READY] + [down] * 9 + [READY]  # 270 s disconnected at 30 s ticks
    assert alerted(run_ticks(short)[1]) == []
    longer = [READY] + [down] * 12 + [READY, READY]  # 330 s
    _, kinds, _ = run_ticks(longer)
    assert alerted(kinds) == ["disconnected", "recovered"]
    assert kinds[11] == ["disconnected"], "the first tick at or past 300 s of disconnect"


def test_a_gateway_that_should_not_be_up_is_idle_and_its_stop_alerts_nothing():
    idle = Seen(expected=False, condition=watchdog.IDLE)
    exited = seen(watchdog.CONTAINER_EXITED, finished_at=T0)
    _, kinds, _ = run_ticks([READY, exited, idle, idle, READY])
    assert alerted(kinds) == ["container_exited"], "a stop after a crash, then a fresh start: no recovered"


def test_the_first_tick_records_a_container_that_ended_before_the_watch_began_without_an_alert():
    exited = seen(watchdog.CONTAINER_EXITED, finished_at=T0 - timedelta(days=2))
    state, kinds, _ = run_ticks([exited, exited, READY], state=State())
    assert alerted(kinds) == ["recovered"]
    assert state.since == T0.isoformat()


def test_a_restart_by_docker_s_restart_policy_is_a_container_exited_alert():
    again = seen(watchdog.NOT_READY, restart_count=1)
    _, kinds, _ = run_ticks([READY, again, seen(watchdog.READY, restart_count=1)])
    assert kinds == [[], ["container_exited"], []]


def test_a_hung_api_alerts_once_and_is_soft_restarted_at_most_once_an_hour():
    hung = seen(watchdog.API_HUNG)
    ticks = [READY] + [hung] * 200  # 100 minutes at 30 s
    state, kinds, softs = run_ticks(ticks, settings={"soft_restart": True})
    assert alerted(kinds) == ["api_hung"] and kinds[3] == ["api_hung"]
    restarts = [index for index, soft in enumerate(softs) if soft]
    assert restarts == [3, 3 + 120], "after 3 ticks, then one hour later"
    assert state.soft_restart_at == (T0 + timedelta(seconds=30 * 123)).isoformat()


def test_without_the_knob_a_hung_api_is_never_restarted():
    _, kinds, softs = run_ticks([READY] + [seen(watchdog.API_HUNG)] * 10)
    assert alerted(kinds) == ["api_hung"] and not any(softs)


def test_what_a_soft_restart_passes_through_is_not_reported_and_ready_after_it_is_recovered():
    hung, refused = seen(watchdog.API_HUNG), seen(watchdog.NOT_READY)
    _, kinds, _ = run_ticks([READY, hung, hung, hung] + [refused] * 4 + [READY], settings={"soft_restart": True})
    assert alerted(kinds) == ["api_hung", "recovered"]


LIVE = {"not_ready_ticks": 3, "disconnect_grace": 300, "soft_restart": False, "session_expiring_before": 3600,
        "signin_schedule": {"day": "sun", "time": "17:00", "time_zone": "America/New_York"}}
# Sunday 2026-03-08: the reset at 01:00 EST (06:00 UTC), the planned sign-in at 17:00 EDT (21:00 UTC): the day daylight
# saving time starts in New York.
RESET = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)
PLANNED = datetime(2026, 3, 8, 21, 0, tzinfo=UTC)


def test_signin_due_once_when_the_planned_sign_in_passed_with_no_sign_in_since_the_reset():
    signed_in = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)  # last week's
    state = State()
    for minutes, expected in ((-1, []), (1, ["signin_due"]), (30, []), (60 * 24, [])):
        state, events = watchdog.calendar(state, PLANNED + timedelta(minutes=minutes), signed_in, LIVE)
        assert [event.kind for event in events] == expected, minutes
    assert state.signin_due_for == PLANNED.isoformat()
    _, events = watchdog.calendar(State(), PLANNED + timedelta(minutes=1), PLANNED - timedelta(minutes=5), LIVE)
    assert events == [], "signed in after the reset"
    _, events = watchdog.calendar(State(), PLANNED + timedelta(minutes=1), None, LIVE)
    assert [event.kind for event in events] == ["signin_due"], "no sign-in record at all"


def test_session_expiring_once_the_configured_time_before_good_until():
    signed_in = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)  # good until the reset of 2026-03-08 06:00 UTC
    state = State()
    kinds = []
    for minutes in (-61, -59, -30, 1):
        state, events = watchdog.calendar(state, RESET + timedelta(minutes=minutes), signed_in, LIVE)
        kinds.append([event.kind for event in events])
    assert kinds == [[], ["session_expiring"], [], []]
    _, events = watchdog.calendar(State(), RESET - timedelta(minutes=10), signed_in,
                                  {**LIVE, "session_expiring_before": 0})
    assert events == [], "0 turns it off"


class FakeDocker:
    """docker inspect and docker logs as the CLI answers them, for one container."""

    def __init__(self, state: dict, logs: str = "") -> None:
        self.state, self.logs, self.calls = state, logs, []

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(argv)
        if argv[:2] == ["docker", "inspect"]:
            return 0, json.dumps({"Id": "c1" * 8, "State": self.state, "RestartCount": 0,
                                  "Config": {"Image": "ib"}, "Image": ""}), ""
        if argv[:2] == ["docker", "logs"]:
            return 0, self.logs, ""
        return 1, "", "unexpected"


@pytest.fixture
def settings(tmp_path):
    return {"instance": "paper", "mode": "paper", "host": "gw1", "container": "ibgw-paper", "probe_host": "127.0.0.1",
            "port": 1, "client_id": 999, "command_port": 7462, "lock_file": str(tmp_path / ".lock"),
            "stopped_marker": str(tmp_path / "operator-stopped"), "signin_record": str(tmp_path / "signed-in-at"),
            "state_file": str(tmp_path / "state" / "paper.json"), "peers": [str(tmp_path / "state" / "paper.json")],
            "heartbeat_file": str(tmp_path / "heartbeat-url"),
            "alerts": {"webhook_file": str(tmp_path / "webhook"), "apprise_file": str(tmp_path / "alert-apprise"),
                       "webhook_timeout": 2, "spool_dir": str(tmp_path / "spool")}, **SETTINGS}


RUNNING = {"Running": True, "Status": "running", "StartedAt": "2026-03-04T14:00:00.123456789Z", "Pid": 1}


def test_a_tick_probes_a_real_hung_api_and_alerts_api_hung_after_n_ticks(standin, settings, monkeypatch):
    monkeypatch.setattr(watchdog, "PROBE_TIMEOUT", 1.5)
    gateway = standin(STANDIN_API_HANG="yes")
    gateway.wait_for("Login has completed")
    settings["port"] = gateway.port
    docker = FakeDocker(RUNNING)
    kinds = [[a.kind for a in watchdog.tick(settings, T0 + timedelta(seconds=5 * i), docker)] for i in range(4)]
    assert kinds == [[], [], ["api_hung"], []]
    with open(settings["state_file"]) as kept_file:
        kept = json.load(kept_file)
    assert kept["reported"] == "api_hung" and os.stat(settings["state_file"]).st_mode & 0o777 == 0o600


def test_a_tick_after_the_tidy_stop_is_idle_and_a_busy_lock_skips_the_tick(settings):
    exited = {"Running": False, "Status": "exited", "ExitCode": 0, "StartedAt": "2026-03-04T14:00:00Z",
              "FinishedAt": "2026-03-04T14:30:00Z"}
    open(settings["stopped_marker"], "w").close()
    os.utime(settings["stopped_marker"], (T0.timestamp(), T0.timestamp()))
    assert watchdog.tick(settings, T0, FakeDocker(exited)) == []
    with open(settings["state_file"]) as kept_file:
        assert json.load(kept_file)["reported"] == "idle"
    os.unlink(settings["stopped_marker"])
    alerts = watchdog.tick(settings, T0, FakeDocker({**exited, "ExitCode": 137, "OOMKilled": True}))
    assert [(a.kind, a.instance, a.host) for a in alerts] == [("container_exited", "paper", "gw1")]
    assert "exit code 137" in alerts[0].detail and "OOMKilled" in alerts[0].detail
    with open(settings["lock_file"], "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        docker = FakeDocker(exited)
        assert watchdog.tick(settings, T0, docker) == [] and docker.calls == []


def test_a_session_taken_exit_is_reported_as_session_taken(settings):
    exited = {"Running": False, "Status": "exited", "ExitCode": 0, "StartedAt": "2026-03-04T14:00:00Z",
              "FinishedAt": "2026-03-04T14:30:00Z"}
    watchdog.tick(settings, T0 - timedelta(minutes=40), FakeDocker(RUNNING))
    line = ("2026-03-04 14:30:00:000 IBC: Other session may be primary, so end this session and let the other one "
            "proceed (scenario 6)\n")
    alerts = watchdog.tick(settings, T0, FakeDocker(exited, logs=line))
    assert [a.kind for a in alerts] == ["session_taken"]


def test_alerts_go_to_stdout_and_once_each_to_the_webhook_never_naming_its_url(settings, capsys):
    receiver = Receiver()
    try:
        with open(settings["alerts"]["webhook_file"], "w") as hook:
            hook.write(receiver.url + "\n")
        alert = watchdog.Alert("container_exited", "paper", "exit code 137", host="gw1", time=T0.isoformat())
        alert_spool.emit([alert], settings["alerts"], "ibgw-watchdog", FakeDocker({}), T0)
        assert capsys.readouterr().out == "IBGW_ALERT container_exited paper exit code 137\n"
        assert receiver.bodies == [{"kind": "container_exited", "instance": "paper", "detail": "exit code 137",
                                    "host": "gw1", "time": T0.isoformat()}]
    finally:
        receiver.shutdown()
    alert_spool.emit([alert], {**settings["alerts"], "webhook_timeout": 0.5}, "ibgw-watchdog", FakeDocker({}),
                     T0)  # nobody listens now
    out = capsys.readouterr()
    assert "webhook failed" in out.err and receiver.url not in out.err + out.out


def test_a_lasting_problem_is_said_again_every_repeat_interval_until_it_recovers():
    not_ready = seen(watchdog.NOT_READY)
    ticks = [READY, *[not_ready] * 12, READY, READY]
    _, kinds, _ = run_ticks(ticks, settings={"not_ready_ticks": 1, "repeat_interval": 90})
    said = ["not_ready"]
    assert kinds == [[], said, [], [], said, [], [], said, [], [], said, [], [], ["recovered"], []]
    _, kinds, _ = run_ticks(ticks, settings={"not_ready_ticks": 1, "repeat_interval": 0})
    assert alerted(kinds) == ["not_ready", "recovered"], "0: never again"


def test_a_repeat_says_since_when(settings):
    state, _, _ = decide(State(since=T0.isoformat()), seen(watchdog.API_HUNG, detail="hung"), T0,
                         {**SETTINGS, "not_ready_ticks": 1, "repeat_interval": 60})
    _, again, _ = decide(state, seen(watchdog.API_HUNG, detail="hung"), T0 + timedelta(minutes=1),
                         {**SETTINGS, "not_ready_ticks": 1, "repeat_interval": 60})
    assert [(e.kind, e.detail) for e in again] == [("api_hung", f"still api_hung, since {T0.isoformat()}: hung")]


def test_the_heartbeat_pings_while_all_is_as_expected_and_fails_while_any_instance_has_a_problem(settings, tmp_path):
    live = str(tmp_path / "state" / "live.json")
    settings["peers"] = [live, settings["state_file"]]
    assert watchdog.heartbeat(settings) == "", "no heartbeat URL: nothing to do"
    receiver = Receiver()
    try:
        (tmp_path / "heartbeat-url").write_text(receiver.url + "/\n")
        watchdog.save(settings["state_file"], State(reported=watchdog.READY))
        watchdog.save(live, State(reported=watchdog.IDLE))
        assert watchdog.heartbeat(settings) == ""
        watchdog.save(live, State(reported=watchdog.DISCONNECTED))
        assert watchdog.heartbeat(settings) == ""
        (tmp_path / "heartbeat-url").write_text(receiver.url + "?rid=7\n")
        assert watchdog.heartbeat(settings) == ""
        assert receiver.requests == [("/hook/", b"live: idle, paper: ready"),
                                     ("/hook/fail", b"live: disconnected, paper: ready"),
                                     ("/hook/fail?rid=7", b"live: disconnected, paper: ready")]
    finally:
        receiver.shutdown()
        receiver.server_close()
    failed = watchdog.heartbeat(settings)
    assert failed and receiver.url not in failed and "/hook" not in failed


class LogsSince(FakeDocker):
    """FakeDocker whose ``docker logs --timestamps`` gives the lines in its --since/--until; it records stops."""

    def __init__(self, state: dict, lines: list[str]) -> None:
        super().__init__(state)
        self.lines = lines
        self.restart_count = 0

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        if argv[:2] == ["docker", "inspect"]:
            rc, out, err = super().__call__(argv)
            return rc, json.dumps({**json.loads(out), "RestartCount": self.restart_count}), err
        if argv[:2] == ["systemctl", "show"]:
            return 0, "ExecMainStartTimestamp=@1000\n", ""
        if argv[:3] == ["docker", "logs", "--timestamps"]:
            self.calls.append(argv)
            since, until = (float(argv[argv.index(flag) + 1]) for flag in ("--since", "--until"))
            return 0, "\n".join(line for line in self.lines
                                if since < gateway_log.moment(line.split(" ")[0]).timestamp() <= until), ""
        if argv[0].endswith("/stop"):
            self.calls.append(argv)
            return 0, "stopped", ""
        return super().__call__(argv)


def ibc(moment: datetime, text: str) -> str:
    return f"{gateway_log.stamp(moment)} {moment:%Y-%m-%d %H:%M:%S}:000 IBC: {text}"


def loop(moment: datetime, text: str) -> str:
    return f"{gateway_log.stamp(moment)} {text}"


# The tests below tick at the wall clock's time (the log's lines carry it). Live's calendar, tested above with
# injected times, stays quiet at any hour of the week with a sign-in planned at IBKR's reset itself (never after it)
# and no session_expiring warning.
QUIET_CALENDAR = {"signin_schedule": {"day": session_clock.RESET_DAY,
                                      "time": session_clock.RESET_TIME.strftime("%H:%M"),
                                      "time_zone": session_clock.RESET_ZONE},
                  "session_expiring_before": 0}


@pytest.fixture
def live_settings(settings, tmp_path):
    return {**settings, "instance": "live", "mode": "live", "logins_file": str(tmp_path / "logins" / "live.json"),
            "read_only_api": "no", "twofa_timeout": 180, "stop_command": str(tmp_path / "stop"),
            "not_ready_ticks": 100, **QUIET_CALENDAR}


def test_the_log_between_verbs_names_a_restart_into_a_full_login_and_keeps_the_calendar_true(live_settings):
    """A verb's own login alerts nothing; a daily restart that could not resume does, and its approved login is the
    session's new start in the sign-in record and the ledger."""
    verb_start = datetime.now(UTC) - timedelta(minutes=10)
    lines = [ibc(verb_start, "Login attempt: 1"), ibc(verb_start, "Login has completed")]
    ledger = login_ledger.Ledger(read_to=gateway_log.stamp(verb_start + timedelta(seconds=1)),
                                 started_at=RUNNING["StartedAt"])
    ledger.add(verb_start.isoformat(timespec="seconds"), login_ledger.FULL, "a start by ibgw-ops")
    login_ledger.save(live_settings["logins_file"], ledger)
    login_ledger.write_signin(live_settings["signin_record"], verb_start.isoformat(timespec="seconds"))
    docker = LogsSince(RUNNING, lines)
    assert watchdog.tick(live_settings, datetime.now(UTC), docker) == []
    restart = datetime.now(UTC)
    lines += [loop(restart, "IBC returned exit status 0"),
              loop(restart, "autorestart file not found: full authentication will be required"),
              ibc(restart + timedelta(milliseconds=3), "Login attempt: 1"),
              ibc(restart + timedelta(milliseconds=4), "Second Factor Authentication initiated")]
    time.sleep(0.01)
    alerts = watchdog.tick(live_settings, datetime.now(UTC), docker)
    assert [a.kind for a in alerts] == ["restart_full_login", "2fa_needed"]
    deadline = (restart + timedelta(milliseconds=4) + timedelta(seconds=180)).isoformat(timespec="seconds")
    assert f"by {deadline}" in alerts[1].detail
    assert not os.path.exists(live_settings["signin_record"]), "the weekly session has ended"
    approved = datetime.now(UTC)
    lines.append(ibc(approved, "Login has completed"))
    time.sleep(0.01)
    assert watchdog.tick(live_settings, datetime.now(UTC), docker) == []
    with open(live_settings["signin_record"]) as record:
        assert record.read().strip() == approved.isoformat(timespec="seconds")
    logins = login_ledger.load(live_settings["logins_file"]).logins
    assert [(entry["kind"], entry["at"]) for entry in logins] == [
        ("full", verb_start.isoformat(timespec="seconds")), ("full", approved.isoformat(timespec="seconds"))]
    assert "could not be resumed" in logins[-1]["source"]
    assert not [call for call in docker.calls if call[0].endswith("/stop")]


def test_a_login_refused_between_verbs_stops_the_gateway_once_the_lock_is_free(live_settings):
    moment = datetime.now(UTC) - timedelta(minutes=1)
    login_ledger.save(live_settings["logins_file"], login_ledger.Ledger(
        read_to=gateway_log.stamp(moment - timedelta(seconds=1)), started_at=RUNNING["StartedAt"]))
    docker = LogsSince(RUNNING, [ibc(moment, "Too many failed login attempts. Please wait 53 seconds before "
                                             "attempting to re-login again.")])
    alerts = watchdog.tick(live_settings, datetime.now(UTC), docker)
    assert [a.kind for a in alerts] == ["login_refused"] and "may be locked" in alerts[0].detail
    assert docker.calls[-1] == [live_settings["stop_command"]]
    with open(live_settings["lock_file"]) as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_without_a_ledger_the_first_tick_starts_one_from_now_and_alerts_nothing_old(live_settings):
    old = datetime.now(UTC) - timedelta(hours=3)
    docker = LogsSince(RUNNING, [ibc(old, "Login attempt: 1"), ibc(old, "Second Factor Authentication initiated")])
    assert watchdog.tick(live_settings, datetime.now(UTC), docker) == []
    assert login_ledger.load(live_settings["logins_file"]).read_to > gateway_log.stamp(old)
    assert watchdog.tick(live_settings, datetime.now(UTC), docker) == []


def test_a_disconnect_in_ibkr_s_nightly_maintenance_waits_for_the_window_s_end_plus_the_grace():
    # Wednesday 23:50 in New York (04:50 UTC Thursday): the nightly window ends at 00:15 (05:15 UTC).
    night = datetime(2026, 3, 5, 4, 50, tzinfo=UTC)
    down = seen(watchdog.DISCONNECTED)
    state = State(since=night.isoformat(), reported=watchdog.READY)
    kinds = []
    for minute in range(0, 32):
        state, events, _ = decide(state, down, night + timedelta(minutes=minute), SETTINGS)
        kinds.append([event.kind for event in events])
    assert alerted(kinds[:30]) == [], "the window and the grace after it"
    assert kinds[30] == ["disconnected"], "05:15 plus 300 s is 05:20 UTC, 30 minutes in"


def test_a_disconnect_that_outlasts_the_weekly_reset_says_it_began_in_it():
    reset = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)  # Sunday 01:00 in New York (EST)
    down = seen(watchdog.DISCONNECTED)
    state = State(since=reset.isoformat(), reported=watchdog.READY)
    events: list = []
    for minute in range(0, 60):
        state, more, _ = decide(state, down, reset + timedelta(minutes=minute), SETTINGS)
        events += more
    (event,) = events
    assert event.kind == "disconnected" and "it began during IBKR's weekly reset, which ended at 2026-03-08T06:45" \
        in event.detail


def test_a_restart_by_the_restart_policy_is_not_an_unplanned_start_even_when_its_new_start_shows_a_tick_later(
        live_settings):
    login_ledger.save(live_settings["logins_file"], login_ledger.Ledger(
        read_to=gateway_log.stamp(datetime.now(UTC)), started_at=RUNNING["StartedAt"]))
    docker = LogsSince(RUNNING, [])
    assert watchdog.tick(live_settings, datetime.now(UTC), docker) == []

    def restarted(state: dict, count: int) -> None:
        docker.state = state
        docker.restart_count = count

    restarted({**RUNNING, "Status": "restarting"}, 1)
    assert [a.kind for a in watchdog.tick(live_settings, datetime.now(UTC), docker)] == ["container_exited"]
    restarted({**RUNNING, "StartedAt": "2026-03-04T14:30:00.5Z"}, 1)
    assert [a.kind for a in watchdog.tick(live_settings, datetime.now(UTC), docker)] == []
    restarted({**RUNNING, "StartedAt": "2026-03-04T15:00:00.5Z"}, 1)
    started = [a for a in watchdog.tick(live_settings, datetime.now(UTC), docker)]
    assert [(a.kind, "a start outside ibgw-ops" in a.detail) for a in started] == [("unplanned_start", True)]
