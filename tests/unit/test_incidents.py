"""The incidents the watchdog names from a gateway's log between the verbs, and the logins it records.

The lines are IBC 3.24.1's and the image's ibcstart.sh's own words (gateway_log names the class of each), stamped as
``docker logs --timestamps`` stamps them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ibgw_ops.on_host import gateway_log, incidents, login_ledger

T0 = datetime(2026, 3, 4, 4, 45, tzinfo=UTC)  # Wednesday 23:45 in New York
LIVE = {"mode": "live", "read_only_api": "no", "twofa_timeout": 180}
PAPER = {**LIVE, "mode": "paper"}


def stamped(*lines: str) -> list[str]:
    """Each line one second after the one before, as Docker stamps them; IBC's (``IBC: …``) get IBC's time too."""
    result = []
    for index, line in enumerate(lines):
        moment = T0 + timedelta(seconds=index)
        text = line
        if line.startswith("IBC: "):
            text = f"{moment:%Y-%m-%d %H:%M:%S}:000 {line}"
        result.append(f"{gateway_log.stamp(moment)} {text}")
    return result


def reviewed(lines: list[str], settings: dict | None = None, cause: str = "",
             started: datetime = T0) -> incidents.Review:
    return incidents.review(gateway_log.happenings(lines, ""), settings or LIVE,
                            (gateway_log.stamp(started), cause) if cause else ("", ""))


DAILY_RESUMED = stamped("IBC returned exit status 0", "Finding autorestart file",
                        "autorestart file found at /home/ibgateway/Jts/abc/autorestart: authentication will not be "
                        "required", "IBC will restart shortly", "IBC: Login has completed")
# The daily restart left no autorestart file: ibcstart.sh ends, the container ends, Docker's restart policy starts it.
DAILY_LOST = stamped("IBC returned exit status 0", "Finding autorestart file",
                     "autorestart file not found: full authentication will be required", "Gateway finished",
                     "Finding autorestart file", "autorestart file not found: full authentication will be required",
                     "IBC: Login attempt: 1", "IBC: Waiting for Login frame to become SecondFactorAuthenticationDialog",
                     "IBC: Second Factor Authentication initiated")


def test_a_daily_restart_that_resumes_is_a_resumed_login_and_no_alert():
    told = reviewed(DAILY_RESUMED)
    assert told.events == []
    assert [(kind, source.split(" (")[0]) for _, kind, source in told.logins] == [
        ("resumed", f"the gateway's exit at {(T0).isoformat()}")]
    assert told.session is None and not told.stop


def test_a_daily_restart_that_cannot_resume_names_the_full_login_and_the_push_with_its_deadline():
    told = reviewed(DAILY_LOST)
    assert [event.kind for event in told.events] == ["restart_full_login", "2fa_needed"]
    full, push = told.events
    assert "autorestart file not found" in full.detail and "the weekly session has ended" in full.detail
    push_at = T0 + timedelta(seconds=8)
    assert f"approve it in IBKR Mobile by {(push_at + timedelta(seconds=180)).isoformat()}" in push.detail
    assert told.session == "" and told.logins == []


def test_an_approved_push_records_a_full_login_and_a_new_weekly_session():
    approved = T0 + timedelta(seconds=30)
    told = reviewed([*DAILY_LOST, f"{gateway_log.stamp(approved)} {approved:%Y-%m-%d %H:%M:%S}:000 IBC: Login has "
                                  "completed"])
    assert [kind for _, kind, _ in told.logins] == ["full"]
    assert told.session == approved.isoformat()


def test_paper_full_login_says_paper_holds_the_shared_login_and_never_touches_a_session():
    told = reviewed(DAILY_LOST[:7], PAPER)
    assert [event.kind for event in told.events] == ["restart_full_login"]
    assert "paper holds the login the trader shares" in told.events[0].detail and told.session is None


def test_a_refused_login_is_one_alert_and_a_stop_however_often_ibc_retries():
    """The full login that began is said first (its cause), then IBKR's answer, once."""
    lines = stamped("IBC: Login attempt: 1", "IBC: Login failed", "IBC: Cold restart in progress",
                    "IBC: Login has not completed: exiting immediately", "IBC returned exit status 0",
                    "IBC will cold-restart shortly", "IBC: Login attempt: 2", "IBC: Login failed")
    told = reviewed(lines)
    assert [event.kind for event in told.events] == ["restart_full_login", "login_refused"] and told.stop
    assert "IBC: Login failed" in told.events[1].detail


def test_too_many_failed_logins_says_the_account_may_be_locked():
    told = reviewed(stamped("IBC: Too many failed login attempts. Please wait 4 minutes & 47 seconds before "
                            "attempting to re-login again."))
    assert [event.kind for event in told.events] == ["login_refused"]
    assert "may be locked; IBKR asked to wait 4 minutes & 47 seconds" in told.events[0].detail


def test_an_unplanned_start_is_named_once_by_its_cause_not_again_as_a_restart():
    told = reviewed(stamped("Finding autorestart file", "autorestart file not found: full authentication will be "
                            "required", "IBC: Login attempt: 1", "IBC: Second Factor Authentication initiated"),
                    cause="Docker's restart policy, after the machine booted at 2026-03-04T04:44:00+00:00")
    assert [event.kind for event in told.events] == ["2fa_needed"]
    assert "after Docker's restart policy, after the machine booted" in told.events[0].detail


def test_an_unplanned_start_leaves_the_old_runs_end_out_of_the_cause():
    lines = stamped("IBC returned exit status 143", "autorestart file not found: full authentication will be required",
                    "Gateway finished", "Finding autorestart file",
                    "autorestart file not found: full authentication will be required", "IBC: Login attempt: 1",
                    "IBC: Second Factor Authentication initiated", "IBC: Login has completed")
    told = reviewed(lines, cause="Docker's restart policy, after the Docker daemon restarted at 04:45:02",
                    started=T0 + timedelta(seconds=3))
    assert [event.kind for event in told.events] == ["2fa_needed"]
    assert told.logins == [((T0 + timedelta(seconds=7)).isoformat(), "full",
                            "Docker's restart policy, after the Docker daemon restarted at 04:45:02")]


def test_ibkr_dropping_the_server_connection_is_named_and_the_cold_restart_is_its_cause():
    told = reviewed(stamped("IBC: Connection to server failed: Connection reset", "IBC: Cold restart in progress",
                            "IBC returned exit status 0", "IBC will cold-restart shortly", "IBC: Login attempt: 1"),
                    PAPER)
    assert [event.kind for event in told.events] == ["ibkr_reset", "restart_full_login"]
    assert "after IBKR's server dropped the gateway" in told.events[1].detail


def test_the_drop_stays_the_cause_when_the_cold_restart_comes_in_a_later_tick():
    lines = stamped("IBC: Connection to server failed", "IBC: Cold restart in progress", "IBC returned exit status 0",
                    "IBC will cold-restart shortly", "IBC: Login attempt: 1")
    first = incidents.review(gateway_log.happenings(lines[:2], ""), LIVE)
    later = incidents.review(gateway_log.happenings(lines[2:], ""), LIVE, pending=first.pending)
    assert [event.kind for event in first.events + later.events] == ["ibkr_reset", "restart_full_login"]
    assert (f"after IBC's cold restart at {(T0 + timedelta(seconds=3)).isoformat()} after IBKR's server dropped the "
            f"gateway at {T0.isoformat()}") in later.events[0].detail


def test_a_read_only_api_alerts_unless_the_instance_asked_for_it():
    line = stamped("IBC: Setting ReadOnlyApi", "IBC: Read-Only API checkbox is already set to: true")
    assert [event.kind for event in reviewed(line).events] == ["api_read_only"]
    assert reviewed(line, {**LIVE, "read_only_api": "yes"}).events == []
    assert reviewed(stamped("IBC: Read-Only API checkbox is now set to: false")).events == []
    unknown = stamped("IBC: could not find Read-Only API checkbox")
    assert [event.kind for event in reviewed(unknown).events] == ["api_read_only"]
    assert reviewed(unknown, {**LIVE, "read_only_api": ""}).events == []


def test_a_taken_session_ends_lives_weekly_session():
    told = reviewed(stamped("IBC: Re-login to session", "IBC: End this session and let the other session proceed "
                                                       "(scenario 2)"))
    assert told.session == "" and told.events == []


def test_a_login_elsewhere_that_live_pushes_out_is_named_and_keeps_the_session():
    told = reviewed(stamped("IBC: Re-login to session", "IBC: Continue this session and let the other session exit "
                                                       "(scenario 5)"))
    assert [event.kind for event in told.events] == ["competing_login"]
    assert "(at 2026-03-04T04:45:01+00:00)" in told.events[0].detail and "kept its session" in told.events[0].detail
    assert told.session is None and told.logins == [] and not told.stop


def test_lines_up_to_the_ledgers_read_to_are_left_out_and_both_streams_merge_in_time_order():
    lines = DAILY_RESUMED
    after = lines[2].split(" ")[0]
    assert [h.kind for h in gateway_log.happenings(lines, after)] == ["logged_in"]
    shuffled = [lines[4], lines[0], "socat[12] E connect(5, AF=2 127.0.0.1:4001, 16): Connection refused"]
    assert [h.kind for h in gateway_log.happenings(shuffled, "")] == ["java_ended", "logged_in"]


def test_docker_times_round_trip_through_the_since_argument():
    moment = datetime(2026, 3, 4, 4, 45, 1, 123456, tzinfo=UTC)
    assert gateway_log.stamp(moment) == "2026-03-04T04:45:01.123456000Z"
    assert gateway_log.unix(gateway_log.stamp(moment)) == f"{int(moment.timestamp())}.123456000"
    assert gateway_log.moment(gateway_log.stamp(moment)) == moment


def test_the_ledger_keeps_the_newest_logins_and_survives_a_damaged_file(tmp_path):
    path = str(tmp_path / "logins" / "live.json")
    ledger = login_ledger.load(path)
    for day in range(login_ledger.KEEP + 5):
        ledger.add(f"2026-03-{day % 28 + 1:02d}T04:45:00+00:00", login_ledger.RESUMED, "daily")
    ledger.read_to = "2026-03-04T04:45:01.000000000Z"
    login_ledger.save(path, ledger)
    again = login_ledger.load(path)
    assert len(again.logins) == login_ledger.KEEP and again.last == ledger.logins[-1] and again.read_to
    (tmp_path / "logins" / "live.json").write_text("{not json")
    assert login_ledger.load(path) == login_ledger.Ledger()


def test_the_cause_carries_over_to_the_next_stretch_until_a_login_completes():
    first = reviewed(DAILY_LOST[:3])
    assert first.events == [] and "could not be resumed" in first.pending[0]
    second = incidents.review(gateway_log.happenings(DAILY_LOST[3:], ""), LIVE, pending=first.pending)
    assert [event.kind for event in second.events] == ["restart_full_login", "2fa_needed"]
    assert "could not be resumed" in second.events[0].detail
    done = reviewed(DAILY_RESUMED)
    assert done.pending == ("", "", "")


def test_a_restart_that_cannot_resume_is_named_so_when_a_later_tick_reads_past_the_exit():
    first = reviewed(DAILY_LOST[:1])
    assert first.events == [] and first.pending[2]
    second = incidents.review(gateway_log.happenings(DAILY_LOST[1:], ""), LIVE, pending=first.pending)
    assert [event.kind for event in second.events] == ["restart_full_login", "2fa_needed"]
    assert f"the gateway's exit at {T0.isoformat()}, after which the session could not be resumed" in (
        second.events[0].detail)
