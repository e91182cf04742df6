"""Status rows: uptime from Docker's nanosecond times, the table and the ready line."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ibgw_ops import status_report
from ibgw_ops.errors import BadInput
from ibgw_ops.on_host import gateway_log

ROW = {"host": "gw1", "instance": "paper", "mode": "paper", "container": "running",
       "started_at": "2026-11-25T09:55:00.123456789Z", "image": "img:1", "restart_pending": True,
       "api_host": "127.0.0.1", "api_port": 4002, "probe": "ready", "accounts": ["DU1", "DU2"],
       "server_version": 176, "image_id": "sha256:" + "1" * 64, "image_digest": "sha256:" + "d" * 64}


def test_uptime_comes_from_dockers_start_time():
    now = datetime(2026, 11, 25, 10, 2, 5, 123456, tzinfo=UTC)
    stopped = {**ROW, "instance": "live", "container": "exited", "started_at": ""}
    rows = status_report.with_uptime([ROW, stopped], now=now)
    assert [(r["instance"], r["uptime_seconds"]) for r in rows] == [("live", None), ("paper", 425)]
    assert gateway_log.moment_if_set("0001-01-01T00:00:00Z") is None
    assert gateway_log.moment_if_set("") is None


def test_durations_read_like_a_person_would_say_them():
    assert [status_report.human_duration(s) for s in (None, 59, 3600 + 300, 3 * 86400 + 4 * 3600)] == [
        "-", "0m 59s", "1h 5m", "3d 4h"]


def test_the_table_flags_a_pending_restart_and_lists_accounts():
    row = {**ROW, "uptime_seconds": 425}
    lines = status_report.render_table([row]).splitlines()
    assert lines[0].split() == ["HOST", "INSTANCE", "MODE", "CONTAINER", "UPTIME", "PROBE", "ACCOUNTS", "MEMORY",
                                "PREVIOUS", "IMAGE", "DIGEST"]
    assert lines[1].split() == ["gw1", "paper", "paper", "running", "(restart", "pending)", "7m", "5s", "ready",
                                "DU1,DU2", "-", "-", "img:1", "sha256:" + "d" * 64]
    assert status_report.ready_line({**row, "restart_pending": False}) == (
        "ready: paper on gw1 at 127.0.0.1:4002 (accounts DU1,DU2, server version 176)")
    assert status_report.ready_line(row).endswith(
        "server version 176; restart pending: a soft restart keeps the configuration, --hard applies it)")


def test_the_digest_is_the_registry_s_else_the_image_id():
    loaded = {**ROW, "image_digest": ""}
    assert status_report.image_digest(ROW) == "sha256:" + "d" * 64
    assert status_report.image_digest(loaded) == "image id sha256:" + "1" * 64
    assert status_report.image_digest({**loaded, "image_id": ""}) == "-"


def test_deploy_names_the_image_each_instance_runs():
    assert status_report.deployed_line(ROW) == (
        f"deployed: paper on gw1: container running (restart pending), image img:1, sha256:{'d' * 64}")
    assert status_report.deployed_line({**ROW, "container": "absent", "image_id": "", "image_digest": ""}) == (
        "deployed: paper on gw1: no container yet; a start runs img:1")


SCHEDULE = {"day": "sun", "time": "17:00", "time_zone": "America/New_York"}
WEDNESDAY = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)


def kinds(**row: object) -> list[str]:
    base = {"host": "gw1", "instance": "live", "mode": "live", "container": "running", "probe": "ready",
            "reason": None, "signed_in_at": "2026-11-22T22:05:00+00:00", "signin_schedule": SCHEDULE}
    (assessed,) = status_report.with_sessions([{**base, **row}], WEDNESDAY)
    return [kind for kind, _ in assessed["warnings"]]


def test_each_live_problem_is_its_own_warning():
    assert kinds() == []
    assert kinds(container="exited") == ["session_expiring"]
    assert kinds(probe="not_ready", reason="twofa_pending") == ["2fa_needed"]
    assert kinds(probe="disconnected") == ["not_ready"]
    assert kinds(signed_in_at="") == ["session_expiring"]
    assert kinds(signed_in_at="2026-11-15T22:05:00+00:00") == ["session_expiring"]  # last week's session
    assert kinds(mode="paper", instance="paper", container="exited", reason="session_taken") == ["session_taken"]
    assert kinds(mode="paper", instance="paper", container="exited", reason="login_failed") == ["login_failed"]


def test_a_sign_in_before_the_weekly_reset_is_a_warning_naming_both_times():
    saturday = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)
    (row,) = status_report.with_sessions([{"host": "gw1", "instance": "live", "mode": "live", "container": "running",
                                           "probe": "ready", "signed_in_at": saturday.isoformat(),
                                           "signin_schedule": SCHEDULE}], saturday)
    assert [kind for kind, _ in row["warnings"]] == ["session_expiring"]
    rendered = status_report.render_sessions([row])
    assert f"WARNING live on gw1: the session ends {status_report.shown(datetime(2026, 11, 29, 6, 0, tzinfo=UTC))}" \
        in rendered
    assert f"before the next planned sign-in {status_report.shown(datetime(2026, 11, 29, 22, 0, tzinfo=UTC))}" \
        in rendered


def test_a_signed_in_live_row_gets_its_calendar():
    (row,) = status_report.with_sessions([{"host": "gw1", "instance": "live", "mode": "live", "container": "running",
                                           "probe": "ready", "signed_in_at": "2026-11-22T22:05:00+00:00",
                                           "signin_schedule": SCHEDULE}], WEDNESDAY)
    assert row["session_age_seconds"] == 2 * 86400 + 18 * 3600 + 55 * 60
    assert datetime.fromisoformat(row["next_reset"]) == datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    assert datetime.fromisoformat(row["limit"]) == datetime(2026, 11, 29, 22, 5, tzinfo=UTC)
    assert datetime.fromisoformat(row["good_until"]) == datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    assert "signed in" in status_report.render_sessions([row])


def test_the_table_says_how_a_container_ended_its_restarts_memory_and_the_previous_one():
    exited = {**ROW, "container": "exited", "restart_pending": False, "exit_code": 137, "oom_killed": True,
              "restart_count": 3, "previous": None}
    restarted = {**ROW, "instance": "live", "restart_pending": False, "exit_code": None, "restart_count": 1,
                 "memory_bytes": 412 * 2**20 + 5, "java_heap_mb": 768,
                 "previous": {"exit_code": 1, "oom_killed": False, "restart_count": 0}}
    table = status_report.render_table(status_report.with_uptime([exited, restarted])).splitlines()
    starts = [table[0].index(column.upper()) for column in status_report.COLUMNS]
    cells = [{column: line[start:end].strip() for column, start, end in
              zip(status_report.COLUMNS, starts, [*starts[1:], None], strict=True)} for line in table[1:]]
    assert [(row["instance"], row["container"], row["memory"], row["previous"]) for row in cells] == [
        ("live", "running (1 restart)", "412M/768M heap", "exit 1"),
        ("paper", "exited (exit 137 oom, 3 restarts)", "-", "-")]


def test_an_oom_kill_is_a_warning_and_the_notices_are_named():
    rows = status_report.with_sessions([{**ROW, "container": "exited", "exit_code": 137, "oom_killed": True,
                                         "codes": [2104, 2106, 2104, 2158, 504]}])
    assert [kind for kind, _ in rows[0]["warnings"]] == ["container_exited"]
    assert status_report.render_sessions(rows).splitlines() == [
        "paper on gw1: IBKR notices: 2104 market data farm OK, 2106 HMDS farm OK, 2158 sec-def farm OK",
        "WARNING paper on gw1: the container was OOM-killed (exit 137): raise the instance's java_heap_size or the "
        "VM's memory"]


@pytest.mark.parametrize(("container", "waits"), [("exited", True), ("absent", True), ("running", False)])
def test_an_open_window_with_paper_down_says_paper_waits_for_the_next_window(container, waits):
    window = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:55", "end": "09:40",
              "time_zone": "America/New_York"}
    monday = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
    (row,) = status_report.with_sessions([{**ROW, "container": container, "windows": [window]}], now=monday)
    assert datetime.fromisoformat(row["window_opens"]) == datetime(2026, 12, 7, 13, 55, tzinfo=UTC)
    shown = status_report.render_sessions([row])
    if not waits:
        assert "window_waits_until" not in row and "waits" not in shown
        return
    assert datetime.fromisoformat(row["window_waits_until"]) == datetime(2026, 12, 8, 13, 55, tzinfo=UTC)
    assert ("paper on gw1: the window is open, but paper is not running: it waits for the next window, "
            f"{status_report._shown_iso(row['window_waits_until'])} ('ibgw-ops up paper' starts it now)") in shown
    assert row["warnings"] == []


def test_logs_previous_says_how_the_replaced_container_ended():
    assert status_report.previous_line(None).startswith("no previous container kept")
    line = status_report.previous_line({"id": "c" * 12, "image": "img:1", "container": "exited",
                                        "started_at": "S", "finished_at": "F", "exit_code": 0,
                                        "oom_killed": False, "restart_count": 0})
    assert line == f"previous container {'c' * 12} (img:1), started S, exited F: exit 0"


def test_paper_s_next_window_is_shown_in_local_time():
    window = {"days": ["mon"], "start": "08:55", "end": "09:40", "time_zone": "America/New_York"}
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # a Wednesday
    row = status_report.with_sessions([{**ROW, "windows": [window]}], now=now)[0]
    assert datetime.fromisoformat(row["window_opens"]) == datetime(2026, 12, 7, 13, 55, tzinfo=UTC)
    assert datetime.fromisoformat(row["window_closes"]) == datetime(2026, 12, 7, 14, 40, tzinfo=UTC)
    assert "paper on gw1: next window Mon 2026-12-07" in status_report.render_sessions([row])
    with pytest.raises(BadInput, match=r"ib_gateway_instances\[paper\]\.windows"):
        status_report.with_sessions([{**ROW, "windows": [{**window, "days": ["monday"]}]}], now=now)


def test_an_image_the_container_does_not_run_yet_is_shown_as_an_upgrade_pending():
    row = {"host": "gw1", "instance": "live", "mode": "live", "container": "running",
           "image": "gnzsnz/ib-gateway:10.45.1j", "image_id": "sha256:" + "1" * 64, "image_digest": "sha256:aa",
           "image_configured": "gnzsnz/ib-gateway:10.50.1d@sha256:bb", "image_pending_id": "sha256:" + "2" * 64,
           "image_pending_digest": "sha256:bb"}
    assert status_report.upgrade_line(row) == (
        "live on gw1: upgrade pending: 10.45.1j → 10.50.1d (running sha256:aa, pending sha256:bb); applies at the "
        "next live-signin (or upgrade --now --hard)")
    assert status_report.upgrade_line({**row, "mode": "paper", "image_pending_digest": ""}).endswith(
        f"(running sha256:aa, pending image id sha256:{'2' * 64}); applies at its next start")
    # The same reference pushed again (a new id under the old tag) is pending too; the running image is not.
    assert "10.45.1j → 10.45.1j" in status_report.upgrade_line({**row, "image_configured": row["image"]})
    assert status_report.upgrade_line({**row, "image_configured": row["image"],
                                       "image_pending_id": row["image_id"]}) is None
    assert status_report.upgrade_line({**row, "container": "absent"}) is None
