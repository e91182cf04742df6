"""Status rows: uptime from Docker's nanosecond times, the table and the ready line."""

from __future__ import annotations

from datetime import UTC, datetime

from ibgw_ops import status_report

ROW = {"host": "gw1", "instance": "paper", "mode": "paper", "container": "running",
       "started_at": "2026-11-25T09:55:00.123456789Z", "image": "img:1", "restart_pending": True,
       "api_host": "127.0.0.1", "api_port": 4002, "probe": "ready", "accounts": ["DU1", "DU2"],
       "server_version": 176}


def test_uptime_comes_from_dockers_start_time():
    now = datetime(2026, 11, 25, 10, 2, 5, 123456, tzinfo=UTC)
    stopped = {**ROW, "instance": "live", "container": "exited", "started_at": ""}
    rows = status_report.with_uptime([ROW, stopped], now=now)
    assert [(r["instance"], r["uptime_seconds"]) for r in rows] == [("live", None), ("paper", 425)]
    assert status_report.parse_docker_time("0001-01-01T00:00:00Z") is None


def test_durations_read_like_a_person_would_say_them():
    assert [status_report.human_duration(s) for s in (None, 59, 3600 + 300, 3 * 86400 + 4 * 3600)] == [
        "-", "0m 59s", "1h 5m", "3d 4h"]


def test_the_table_flags_a_pending_restart_and_lists_accounts():
    row = {**ROW, "uptime_seconds": 425}
    lines = status_report.render_table([row]).splitlines()
    assert lines[0].split() == ["HOST", "INSTANCE", "MODE", "CONTAINER", "UPTIME", "PROBE", "ACCOUNTS", "IMAGE"]
    assert lines[1].split() == ["gw1", "paper", "paper", "running", "(restart", "pending)", "7m", "5s", "ready",
                                "DU1,DU2", "img:1"]
    assert status_report.ready_line(row) == (
        "ready: paper on gw1 at 127.0.0.1:4002 (accounts DU1,DU2, server version 176)")
