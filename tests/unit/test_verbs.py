"""Every playbook verb runs exactly the expected playbooks with exactly the expected extra variables (kayobe
style: ansible_runner.run is replaced by a recorder)."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import ansible_runner
import pytest

from ibgw_ops import cli, status_report
from ibgw_ops.errors import ExitCode
from ibgw_ops.paths import data_dir, playbook_path
from tests.unit.fake_runner import HOST, FakeRunner, failed, ok, stats

WEDNESDAY = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
READY = {"ibgw_ready": {"instance": "paper", "mode": "paper", "api_host": "10.0.0.5", "api_port": 4002,
                        "accounts": ["DU1"], "server_version": 176}}


@pytest.fixture
def fake(monkeypatch, tmp_path) -> FakeRunner:
    recorder = FakeRunner()
    monkeypatch.setattr(ansible_runner, "run", recorder)
    monkeypatch.setenv("IBGW_OPS_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "hosts.yml").write_text("all: {}\n")
    monkeypatch.setenv("IBGW_OPS_INVENTORY", str(tmp_path / "hosts.yml"))
    return recorder


@pytest.mark.parametrize(("argv", "expected"), [
    (["deploy"], [("site.yml", {})]),
    (["deploy", "--check"], [("site.yml", {})]),
    (["up", "live"], [("start.yml", {"ib_gateway_target": "live"})]),
    (["up", "paper-b", "--timeout", "90"],
     [("start.yml", {"ib_gateway_target": "paper-b", "ib_gateway_ready_timeout": 90})]),
    (["down", "all"], [("stop.yml", {"ib_gateway_target": "all"})]),
    (["restart", "live", "--timeout", "60"],
     [("restart.yml", {"ib_gateway_target": "live", "ib_gateway_ready_timeout": 60})]),
    (["status"], [("status.yml", {"ib_gateway_target": "all"})]),
    (["status", "paper", "--json"], [("status.yml", {"ib_gateway_target": "paper"})]),
    (["logs", "live", "-n", "20"], [("logs.yml", {"ib_gateway_target": "live", "ib_gateway_log_lines": 20})]),
    (["logs"], [("logs.yml", {"ib_gateway_target": "all"})]),
    (["logs", "paper", "--previous"], [("logs.yml", {"ib_gateway_target": "paper", "ib_gateway_logs_previous": True})]),
    (["paper-up"], [("start.yml", {"ib_gateway_target": "paper"})]),
    (["paper-up", "--timeout", "120"],
     [("start.yml", {"ib_gateway_target": "paper", "ib_gateway_ready_timeout": 120})]),
    (["paper-down"], [("stop.yml", {"ib_gateway_target": "paper"})]),
    (["paper-run", "--", "true"], [("start.yml", {"ib_gateway_target": "paper", "ib_gateway_pipeline_client_id": 1}),
                                   ("stop.yml", {"ib_gateway_target": "paper"})]),
    (["paper-run", "--client-id", "999", "--", "true"],
     [("start.yml", {"ib_gateway_target": "paper", "ib_gateway_pipeline_client_id": 999}),
      ("stop.yml", {"ib_gateway_target": "paper"})]),
    (["down", "live", "--force"], [("stop.yml", {"ib_gateway_target": "live", "ib_gateway_force": True})]),
    (["restart", "all", "--hard", "--yes"],
     [("restart.yml", {"ib_gateway_target": "all", "ib_gateway_restart_hard": True})]),
    (["restart", "live", "--force"], [("restart.yml", {"ib_gateway_target": "live", "ib_gateway_force": True})]),
    (["live-signin"], [("stop.yml", {"ib_gateway_target": "live"}),
                       ("start.yml", {"ib_gateway_target": "live", "ib_gateway_ready_timeout": 300})]),
    (["live-signin", "live-b", "--timeout", "200", "--force"],
     [("stop.yml", {"ib_gateway_target": "live-b", "ib_gateway_force": True}),
      ("start.yml", {"ib_gateway_target": "live-b", "ib_gateway_ready_timeout": 200})]),
    (["status", "--check"], [("status.yml", {"ib_gateway_target": "all"})]),
])
def test_each_verb_runs_its_playbooks_with_its_extra_vars(fake, argv, expected):
    fake.script["start.yml"] = ([ok(READY), stats()], "successful")
    fake.script["restart.yml"] = ([ok(READY), stats()], "successful")
    assert cli.main(argv) == ExitCode.OK
    assert fake.playbooks() == expected
    for call in fake.calls:
        assert call["playbook"] == str(playbook_path(Path(call["playbook"]).name))
        assert call["inventory"] == os.environ["IBGW_OPS_INVENTORY"]
        assert call["cmdline"] == ("--check --diff" if argv[:2] == ["deploy", "--check"] else None)
        assert call["quiet"] is True and call["suppress_env_files"] is True


def test_every_run_has_a_private_directory_that_is_removed(fake, tmp_path):
    modes = []
    fake.during = lambda kwargs: modes.append(Path(kwargs["private_data_dir"]).stat().st_mode & 0o777)
    assert cli.main(["status"]) == ExitCode.OK
    private = Path(fake.calls[0]["private_data_dir"])
    assert fake.calls[0]["private_existed"] and modes == [0o700]
    assert private.parent == tmp_path / "state" / "runs"
    assert not private.exists()
    assert (tmp_path / "state" / "runs").stat().st_mode & 0o077 == 0


def test_a_run_directory_left_by_a_killed_process_is_removed_a_day_later(fake, tmp_path):
    runs = tmp_path / "state" / "runs"
    old, recent = runs / "start-old", runs / "start-recent"
    for leftover in (old, recent):
        leftover.mkdir(parents=True)
    os.utime(old, (time.time() - 25 * 3600,) * 2)
    assert cli.main(["status"]) == ExitCode.OK
    assert sorted(p.name for p in runs.iterdir()) == ["start-recent"]


def test_events_never_go_to_disk_and_the_environment_checks_host_keys(fake):
    assert cli.main(["status"]) == ExitCode.OK
    call = fake.calls[0]
    assert call["event_handler"](stats()) is False
    assert call["fact_cache_type"] == "memory"
    env = call["envvars"]
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    assert env["ANSIBLE_CONFIG"] == str(data_dir() / "ansible.cfg")
    assert Path(env["ANSIBLE_CONFIG"]).is_file()
    assert not [name for name in env if "PASS" in name or "SECRET" in name]
    # A per-run control path would end each host's SSH master with the run (tests/unit/test_ansible_cfg.py).
    assert not [name for name in env if "CONTROL_PATH" in name]


def test_the_vault_password_goes_to_the_prompt_only(fake, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt: "vault-Pw-123")
    assert cli.main(["paper-down", "--ask-vault-pass"]) == ExitCode.OK
    call = fake.calls[0]
    assert call["cmdline"] == "--ask-vault-pass"
    assert list(call["passwords"].values()) == ["vault-Pw-123"]
    assert "vault-Pw-123" not in json.dumps([call["extravars"], call["envvars"], call["cmdline"]])


@pytest.mark.parametrize(("events", "code", "words"), [
    ([failed("NOT READY: gateway paper: no handshake"), stats(failures=1)], ExitCode.NOT_READY,
     ["gw1", "NOT READY: gateway paper"]),
    ([{"event": "runner_on_unreachable", "event_data": {"host": "gw1", "task": "Check", "res": {
        "msg": "Failed to connect to the host via ssh: Connection refused"}}}, stats(dark=1)],
     ExitCode.UNREACHABLE, ["gw1", "Connection refused"]),
    ([failed("BAD INPUT: ib_gateway_target: 'demo' matches no instance (allowed: all, live, paper).",
             path="/x/roles/ib_gateway/tasks/validate.yml:40"), stats(failures=1)], ExitCode.BAD_INPUT,
     ["ib_gateway_target", "allowed: all, live, paper"]),
    # The class is in the message, never in the task file's name.
    ([failed("no such file", path="/x/roles/ib_gateway/tasks/validate.yml:40"), stats(failures=1)],
     ExitCode.FAILED, ["no such file"]),
    ([failed("UNKNOWN CLASS: something"), stats(failures=1)], ExitCode.FAILED, ["UNKNOWN CLASS: something"]),
    ([failed("non-zero return code", stderr="line one\nno space left on device"), stats(failures=1)],
     ExitCode.FAILED, ["non-zero return code: no space left on device"]),
    ([failed("SESSION TAKEN: gateway paper: container stopped"), stats(failures=1)], ExitCode.SESSION_TAKEN,
     ["SESSION TAKEN: gateway paper"]),
    ([failed("2FA NOT APPROVED: gateway live: not ready within 300 s"), stats(failures=1)], ExitCode.TWOFA_TIMEOUT,
     ["2FA NOT APPROVED"]),
    ([failed("LOGIN FAILED: gateway paper: exited"), stats(failures=1)], ExitCode.LOGIN_FAILED, ["LOGIN FAILED"]),
    ([failed("PROTECTED WINDOW: refusing to stop live gateway(s) live"), stats(failures=1)],
     ExitCode.PROTECTED_WINDOW, ["PROTECTED WINDOW: refusing to stop"]),
    ([failed("BAD INPUT: ib_gateway_protected_window.time_zone: 'Mars/Base' is not a known IANA time zone",
             path="/r/tasks/protected_window.yml:3"), stats(failures=1)], ExitCode.BAD_INPUT, ["time_zone"]),
])
def test_failures_are_summarised_per_host_with_a_classified_exit_code(fake, capsys, events, code, words):
    fake.script["start.yml"] = (events, "failed")
    assert cli.main(["up", "paper"]) == code
    err = capsys.readouterr().err
    assert "start.yml failed on 1 host(s)" in err
    for word in words:
        assert word in err


def test_logs_come_from_each_item_of_a_looped_report(fake, capsys):
    items = [{"msg": {"ibgw_logs": {"instance": name, "lines": lines}}} for name, lines in
             (("paper", ["a", "b"]), ("live", []))]
    fake.script["logs.yml"] = ([ok(None), {"event": "runner_on_ok", "event_data": {
        "host": "gw1", "task": "Show", "task_action": "debug", "res": {"results": items}}}, stats()], "successful")
    assert cli.main(["logs"]) == ExitCode.OK
    assert capsys.readouterr().out == "== gw1 live\n(no container)\n== gw1 paper\na\nb\n"


def test_logs_previous_heads_each_gateway_with_how_its_replaced_container_ended(fake, capsys):
    ended = {"id": "c" * 12, "image": "img:1", "container": "exited", "started_at": "S", "finished_at": "F",
             "exit_code": 137, "oom_killed": True, "restart_count": 0}
    items = [{"msg": {"ibgw_logs": {"instance": name, "lines": lines, "previous": previous}}}
             for name, lines, previous in (("paper", ["a"], ended), ("live", [], None))]
    fake.script["logs.yml"] = ([ok(None), {"event": "runner_on_ok", "event_data": {
        "host": "gw1", "task": "Show", "task_action": "debug", "res": {"results": items}}}, stats()], "successful")
    assert cli.main(["logs", "--previous"]) == ExitCode.OK
    assert capsys.readouterr().out.splitlines() == [
        "== gw1 live: no previous container kept (none was replaced since this release was deployed)",
        "(no lines kept)",
        f"== gw1 paper: previous container {'c' * 12} (img:1), started S, exited F: exit 137 oom",
        "a"]


def test_a_run_that_fails_before_any_host_shows_what_ansible_said(fake, capsys):
    fake.script["status.yml"] = ([{"event": "error", "stdout": "[ERROR]: the inventory has a syntax error.\n\n"}],
                                 "failed")
    assert cli.main(["status"]) == ExitCode.FAILED
    assert ("before any host reported a result; Ansible said: [ERROR]: the inventory has a syntax error."
            in capsys.readouterr().err)


@pytest.mark.parametrize(("status", "said"), [
    ("failed", "[ERROR]: Specified inventory, host pattern and/or --limit leaves us with no hosts to target."),
    ("successful", "skipping: no hosts matched"),
])
def test_a_limit_that_matches_no_gateway_is_bad_input(fake, capsys, status, said):
    fake.script["status.yml"] = ([{"event": "error", "stdout": said}], status)
    assert cli.main(["status", "--limit", "nosuch"]) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert "--limit: 'nosuch' matches no host of group ibgw_gateways" in err
    assert "allowed: a host name, group or Ansible pattern over that group's hosts" in err
    assert fake.calls[0]["limit"] == "nosuch"


def test_a_rescued_failure_does_not_count(fake):
    fake.script["start.yml"] = ([failed("probe timed out"), ok(READY), stats()], "successful")
    assert cli.main(["up", "paper"]) == ExitCode.OK


def test_an_inventory_without_gateway_hosts_is_bad_input(fake, capsys):
    fake.script["status.yml"] = ([{"event": "playbook_on_stats", "event_data": {"processed": {}}}], "successful")
    assert cli.main(["status"]) == ExitCode.BAD_INPUT
    assert "no host in group ibgw_gateways" in capsys.readouterr().err


def test_success_is_silent_off_a_terminal_and_talks_on_one(fake, capsys, monkeypatch):
    fake.script["start.yml"] = ([ok({"x": 1}, task="Wait until ready", action="ibgw_probe"), ok(READY), stats()],
                                "successful")
    assert cli.main(["paper-up"]) == ExitCode.OK
    assert capsys.readouterr() == ("", "")
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert cli.main(["paper-up"]) == ExitCode.OK
    out, err = capsys.readouterr()
    assert "ready: paper on gw1 at 10.0.0.5:4002 (accounts DU1, server version 176)" in out
    assert "ok          gw1  Wait until ready" in err
    assert "Report" not in err


def test_paper_run_refused_by_the_role_for_the_probe_s_client_id_runs_nothing(fake, tmp_path, capsys):
    refusal = ("BAD INPUT: ib_gateway_pipeline_client_id (paper-run --client-id): 77 is the readiness probe's client "
               "id, ib_gateway_probe_client_id")
    fake.script["start.yml"] = ([failed(refusal, task="Check the settings"), stats(failures=1)], "failed")
    marker = tmp_path / "ran"
    assert cli.main(["paper-run", "--client-id", "77", "--", "touch", str(marker)]) == ExitCode.BAD_INPUT
    assert fake.playbooks() == [("start.yml", {"ib_gateway_target": "paper", "ib_gateway_pipeline_client_id": 77})]
    assert not marker.exists() and refusal in capsys.readouterr().err


def test_paper_run_hands_the_gateway_to_the_command_and_exits_with_its_code(fake, tmp_path):
    fake.script["start.yml"] = ([ok(READY), stats()], "successful")
    seen = tmp_path / "env.json"
    script = f"import json, os; json.dump(dict(os.environ), open({str(seen)!r}, 'w')); raise SystemExit(7)"
    assert cli.main(["paper-run", "--client-id", "12", "--", "python3", "-c", script]) == 7
    env = json.loads(seen.read_text())
    # What paper-run sets: the IBGW_ variables that this test's own environment did not already hold as they are.
    assert {k: env[k] for k in env if k.startswith("IBGW_") and not k.startswith("IBGW_OPS_")
            and os.environ.get(k) != env[k]} == {
        "IBGW_API_HOST": "10.0.0.5", "IBGW_API_PORT": "4002", "IBGW_CLIENT_ID": "12", "IBGW_INSTANCE": "paper",
        "IBGW_ACCOUNTS": "DU1"}
    assert [p for p, _ in fake.playbooks()] == ["start.yml", "stop.yml"]


def test_paper_run_takes_paper_down_when_the_command_cannot_run_or_is_killed(fake):
    fake.script["start.yml"] = ([ok(READY), stats()], "successful")
    assert cli.main(["paper-run", "--", "/nonexistent/pipeline"]) == 127
    assert cli.main(["paper-run", "--", "sh", "-c", "kill -TERM $$"]) == 128 + signal.SIGTERM
    assert [p for p, _ in fake.playbooks()] == ["start.yml", "stop.yml"] * 2


def test_paper_run_exits_126_for_a_file_that_is_not_a_program_and_paper_ends_down(fake, capsys, tmp_path):
    fake.script["start.yml"] = ([ok(READY), stats()], "successful")
    text = tmp_path / "hostname"
    text.write_text("gw1\n")
    text.chmod(0o755)
    assert cli.main(["paper-run", "--", str(text)]) == 126
    assert cli.main(["paper-run", "--", str(tmp_path)]) == 126
    err = capsys.readouterr().err
    assert f"paper-run: {text}: cannot be run as a program" in err and "Traceback" not in err
    assert [p for p, _ in fake.playbooks()] == ["start.yml", "stop.yml"] * 2


def test_ask_vault_pass_without_a_terminal_is_bad_input_before_any_run(fake, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert cli.main(["paper-down", "--ask-vault-pass"]) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert "--ask-vault-pass: no terminal" in err and "ANSIBLE_VAULT_PASSWORD_FILE" in err
    assert fake.calls == []


def test_a_missing_vault_password_file_is_bad_input_before_any_run(fake, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(tmp_path / "missing"))
    assert cli.main(["paper-down"]) == ExitCode.BAD_INPUT
    assert f"ANSIBLE_VAULT_PASSWORD_FILE: {tmp_path / 'missing'} is not a file" in capsys.readouterr().err
    assert fake.calls == []
    (tmp_path / "missing").write_text("pw\n")
    assert cli.main(["paper-down"]) == ExitCode.OK


def test_paper_run_does_not_run_the_command_when_paper_is_not_ready(fake, tmp_path):
    fake.script["start.yml"] = ([failed("NOT READY: gateway paper: login failed"), stats(failures=1)], "failed")
    marker = tmp_path / "ran"
    assert cli.main(["paper-run", "--", "touch", str(marker)]) == ExitCode.NOT_READY
    assert not marker.exists()
    assert [p for p, _ in fake.playbooks()] == ["start.yml"]


def test_an_interrupted_paper_start_takes_paper_down_uncancellably(fake, capsys):
    fake.during = lambda kwargs: os.kill(os.getpid(), signal.SIGTERM) if "start" in kwargs["playbook"] else None
    assert cli.main(["paper-up"]) == ExitCode.INTERRUPTED
    assert "paper start interrupted by SIGTERM; paper is down" in capsys.readouterr().err
    assert [p for p, _ in fake.playbooks()] == ["start.yml", "stop.yml"]
    assert fake.calls[0]["cancel_callback"] is not None and fake.calls[1]["cancel_callback"] is None


def test_a_hard_restart_without_yes_and_without_a_terminal_runs_nothing(fake, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert cli.main(["restart", "live", "--hard"]) == ExitCode.BAD_INPUT
    assert fake.calls == []
    assert "--yes: a hard restart asks for confirmation" in capsys.readouterr().err


def test_a_hard_restart_goes_on_only_when_the_operator_types_the_target(fake, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    answers = iter(["yes", "live"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    fake.script["restart.yml"] = ([ok(READY), stats()], "successful")
    assert cli.main(["restart", "live", "--hard"]) == ExitCode.BAD_INPUT
    assert fake.calls == []
    assert cli.main(["restart", "live", "--hard"]) == ExitCode.OK
    assert fake.playbooks() == [("restart.yml", {"ib_gateway_target": "live", "ib_gateway_restart_hard": True})]


def test_the_role_s_alerts_are_relayed_as_one_line_each(fake, capsys):
    alert = {"ibgw_alert": {"kind": "session_taken", "instance": "paper", "detail": "session taken: exited"}}
    fake.script["start.yml"] = ([ok(alert), failed("SESSION TAKEN: gateway paper: exited"), stats(failures=1)],
                                "failed")
    assert cli.main(["paper-up"]) == ExitCode.SESSION_TAKEN
    assert "IBGW_ALERT session_taken paper session taken: exited\n" in capsys.readouterr().err


def test_live_signin_asks_for_the_approval_with_a_deadline_between_stop_and_start(fake, capsys):
    seen = []
    fake.during = lambda kwargs: seen.append((Path(kwargs["playbook"]).name, capsys.readouterr().err))
    fake.script["start.yml"] = ([ok(READY), stats()], "successful")
    assert cli.main(["live-signin", "--timeout", "120"]) == ExitCode.OK
    assert seen[0] == ("stop.yml", "")
    assert seen[1][0] == "start.yml"
    assert "Approve the IBKR Mobile notification" in seen[1][1]
    assert "IBGW_ALERT 2fa_needed live live-signin started: approve the IBKR Mobile notification by" in seen[1][1]
    assert "the session lasts until" in capsys.readouterr().err


def test_live_signin_exits_7_when_the_approval_does_not_come(fake, capsys):
    fake.script["start.yml"] = ([failed("2FA NOT APPROVED: gateway live: not ready within 300 s"),
                                 stats(failures=1)], "failed")
    assert cli.main(["live-signin"]) == ExitCode.TWOFA_TIMEOUT


def _status_row(**fields):
    row = {"instance": "live", "mode": "live", "container": "running", "started_at": "", "image": "i",
           "restart_pending": False, "api_host": "127.0.0.1", "api_port": 4001, "probe": "ready",
           "accounts": ["U1"], "server_version": 176, "reason": None, "signed_in_at": "",
           "signin_schedule": {"day": "sun", "time": "17:00", "time_zone": "America/New_York"}}
    return {"ibgw_status": {**row, **fields}}


def test_status_check_exits_10_with_an_alert_when_live_has_no_sign_in(fake, capsys):
    fake.script["status.yml"] = ([ok(_status_row()), stats()], "successful")
    assert cli.main(["status"]) == ExitCode.OK
    assert "WARNING live on gw1: no sign-in record" in capsys.readouterr().out
    assert cli.main(["status", "--check"]) == ExitCode.ATTENTION
    assert "IBGW_ALERT session_expiring live no sign-in record" in capsys.readouterr().err


def _frozen_status_clock(monkeypatch, moment: datetime) -> None:
    """status reads the clock once; a fixed weekday keeps the calendar's verdict from depending on the day run."""
    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return moment.astimezone(tz)

    monkeypatch.setattr(status_report, "datetime", Frozen)


def test_status_check_passes_for_a_live_session_signed_in_just_now(fake, capsys, monkeypatch):
    _frozen_status_clock(monkeypatch, WEDNESDAY)
    now = WEDNESDAY.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    fake.script["status.yml"] = ([ok(_status_row(signed_in_at=now)), stats()], "successful")
    assert cli.main(["status", "--check"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "live on gw1: signed in" in out and "next weekly reset" in out and "7-day limit" in out


def test_status_check_exits_10_after_a_sign_in_before_the_weekly_reset(fake, capsys, monkeypatch):
    saturday = datetime(2026, 11, 28, 22, 5, tzinfo=UTC)
    _frozen_status_clock(monkeypatch, saturday)
    fake.script["status.yml"] = ([ok(_status_row(signed_in_at="2026-11-28T22:00:00+00:00")), stats()], "successful")
    assert cli.main(["status"]) == ExitCode.OK
    assert "WARNING live on gw1: the session ends" in capsys.readouterr().out
    assert cli.main(["status", "--check"]) == ExitCode.ATTENTION
    assert "IBGW_ALERT session_expiring live the session ends" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["up"], ["up", "Live"], ["up", "paper", "--timeout", "0"], ["down", "../etc"], ["logs", "all", "-n", "x"],
    ["paper-run"], ["paper-run", "--"], ["paper-run", "--client-id", "-3", "--", "true"],
    ["live-signin", "--timeout", "0"], ["live-signin", "Live"], ["restart", "live", "--hard", "--timeout", "-1"],
])
def test_bad_arguments_exit_2_before_any_run(fake, argv, capsys):
    with pytest.raises(SystemExit) as raised:
        code = cli.main(argv)
        raise SystemExit(code)
    assert raised.value.code == ExitCode.BAD_INPUT
    assert fake.calls == []
    assert capsys.readouterr().err


def test_an_unknown_option_is_reported_with_the_verb_s_own_usage(fake, capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main(["down", "paper", "--bogus"])
    assert raised.value.code == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert "usage: ibgw-ops down" in err and "[--force]" in err and "unrecognized arguments: --bogus" in err
    assert fake.calls == []


def test_a_failed_loop_item_s_message_reaches_the_summary(fake, capsys):
    # As ansible-core emits a loop: one event per item, then the task's result, whose items need not say which
    # one failed (2.21 leaves out their "failed" key).
    item_res = {"msg": "Destination /opt/ibgw full", "stderr": "write error: No space left on device"}
    item_failed = {"event": "runner_item_on_failed", "event_data": {"host": HOST, "task": "Do it", "res": item_res}}
    event = failed("One or more items failed")
    event["event_data"]["res"]["results"] = [{"msg": "fine"}, item_res]
    fake.script["site.yml"] = ([item_failed, event, stats(failures=1)], "failed")
    assert cli.main(["deploy"]) == ExitCode.FAILED
    assert "One or more items failed: Destination /opt/ibgw full: write error: No space left on device" in \
        capsys.readouterr().err


def test_an_ignored_loop_item_s_failure_does_not_reach_the_next_failure(fake, capsys):
    ignored = {"event": "runner_item_on_failed",
               "event_data": {"host": HOST, "task": "Try it", "ignore_errors": True, "res": {"msg": "tolerated"}}}
    fake.script["site.yml"] = ([ignored, failed("Real trouble"), stats(failures=1)], "failed")
    assert cli.main(["deploy"]) == ExitCode.FAILED
    err = capsys.readouterr().err
    assert "Real trouble" in err and "tolerated" not in err


UPGRADE_VARS = "ib_gateway_image: gnzsnz/ib-gateway:10.45.1j  # pinned\nib_gateway_instances:\n" \
               "  - name: live\n    mode: live\n  - name: paper\n    mode: paper\n"
NEW_IMAGE = "gnzsnz/ib-gateway:10.50.1d"


def installed(*instances: str, image: str = NEW_IMAGE) -> list[dict]:
    return [ok({"ibgw_installed": {"instance": name, "image": image, "image_id": "sha256:" + "e" * 64}})
            for name in instances] + [stats(changed=1)]


@pytest.fixture
def gateway_inventory(fake, monkeypatch, tmp_path) -> Path:
    """An inventory with one gateway host whose group_vars set the image: what upgrade and rollback edit."""
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(f"all:\n  children:\n    ibgw_gateways:\n      hosts:\n        {HOST}: {{}}\n")
    (inventory / "group_vars" / "ibgw_gateways.yml").write_text(UPGRADE_VARS)
    monkeypatch.setenv("IBGW_OPS_INVENTORY", str(inventory))
    return inventory / "group_vars" / "ibgw_gateways.yml"


@pytest.mark.parametrize(("argv", "script", "expected", "written"), [
    (["upgrade", "--image", NEW_IMAGE], {"upgrade.yml": installed("live", "paper")},
     [("upgrade.yml", {"ib_gateway_target": "all", "ib_gateway_upgrade_image": NEW_IMAGE})],
     UPGRADE_VARS.replace("10.45.1j", "10.50.1d")),
    (["upgrade", "paper", "--image", NEW_IMAGE, "--now", "--timeout", "90"],
     {"upgrade.yml": installed("paper"), "restart.yml": [ok(READY), stats()]},
     [("upgrade.yml", {"ib_gateway_target": "paper", "ib_gateway_upgrade_image": NEW_IMAGE}),
      ("restart.yml", {"ib_gateway_target": "paper", "ib_gateway_ready_timeout": 90})],
     UPGRADE_VARS.replace("  - name: paper\n", f"  - name: paper\n    image: {NEW_IMAGE}\n")),
    (["upgrade", "all", "--image", NEW_IMAGE, "--now", "--hard", "--yes", "--force"],
     {"upgrade.yml": installed("live", "paper"), "restart.yml": [ok(READY), stats()]},
     [("upgrade.yml", {"ib_gateway_target": "all", "ib_gateway_upgrade_image": NEW_IMAGE}),
      ("restart.yml", {"ib_gateway_target": "all", "ib_gateway_restart_hard": True, "ib_gateway_force": True})],
     UPGRADE_VARS.replace("10.45.1j", "10.50.1d")),
    (["rollback", "paper"], {"rollback.yml": installed("paper", image="gnzsnz/ib-gateway:10.44.1a")},
     [("rollback.yml", {"ib_gateway_target": "paper"})],
     UPGRADE_VARS.replace("  - name: paper\n", "  - name: paper\n    image: gnzsnz/ib-gateway:10.44.1a\n")),
])
def test_upgrade_and_rollback_run_their_playbook_then_edit_the_inventory(fake, gateway_inventory, argv, script,
                                                                         *, expected, written):
    fake.script.update({name: (events, "successful") for name, events in script.items()})
    assert cli.main(argv) == ExitCode.OK
    assert fake.playbooks() == expected
    assert gateway_inventory.read_text() == written


def test_a_failing_pull_leaves_the_inventory_as_it_was(fake, gateway_inventory, capsys):
    fake.script["upgrade.yml"] = ([failed("non-zero return code", path="/r/tasks/image.yml:40",
                                          stderr="pull access denied"), stats(failures=1)], "failed")
    assert cli.main(["upgrade", "paper", "--image", NEW_IMAGE, "--now"]) == ExitCode.FAILED
    assert fake.playbooks() == [("upgrade.yml", {"ib_gateway_target": "paper", "ib_gateway_upgrade_image": NEW_IMAGE})]
    assert gateway_inventory.read_text() == UPGRADE_VARS
    assert "pull access denied" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "said"), [
    (["upgrade", "--image", NEW_IMAGE, "--now"], "--now: 'all' includes live gateways"),
    (["upgrade", "live", "--image", NEW_IMAGE, "--hard", "--yes"], "--hard: only applies with --now"),
    (["rollback", "paper-b"], "TARGET: 'paper-b' matches no instance on gw1 (allowed: all, live, paper)"),
    (["upgrade", "--image", NEW_IMAGE, "--limit", "gw1"], "--limit: upgrade and rollback set the image"),
])
def test_an_upgrade_refused_up_front_runs_nothing_and_edits_nothing(fake, gateway_inventory, capsys, argv, said):
    assert cli.main(argv) == ExitCode.BAD_INPUT
    assert fake.calls == []
    assert gateway_inventory.read_text() == UPGRADE_VARS
    assert said in capsys.readouterr().err


def test_an_inventory_line_that_cannot_be_edited_is_printed_before_anything_runs(fake, gateway_inventory, capsys):
    gateway_inventory.write_text(UPGRADE_VARS.replace("gnzsnz/ib-gateway:10.45.1j", '"{{ my_image }}"')
                                 + "my_image: gnzsnz/ib-gateway:10.45.1j\n")
    assert cli.main(["upgrade", "--image", NEW_IMAGE]) == ExitCode.BAD_INPUT
    assert fake.calls == []
    assert (f"is templated, vault-encrypted or set again elsewhere ({gateway_inventory}:1: ib_gateway_image: "
            f"\"{{{{ my_image }}}}\"  # pinned) (allowed: change that line by hand to the reference {NEW_IMAGE})"
            ) in capsys.readouterr().err


def test_paper_run_with_a_command_failed_code_keeps_its_own_codes_apart(fake, capsys):
    fake.script["start.yml"] = ([ok(READY), stats()], "successful")
    argv = ["paper-run", "--command-failed-code", "100", "--"]
    assert cli.main([*argv, "sh", "-c", "exit 2"]) == 100
    assert "paper-run: sh exited with 2; exit 100 (--command-failed-code)" in capsys.readouterr().err
    assert cli.main([*argv, "/nonexistent/pipeline"]) == 100
    assert cli.main([*argv, "true"]) == ExitCode.OK
    fake.script["start.yml"] = ([failed("NOT READY: gateway paper: no handshake"), stats(failures=1)], "failed")
    assert cli.main([*argv, "true"]) == ExitCode.NOT_READY


@pytest.mark.parametrize("code", ["10", "0", "256", "x"])
def test_paper_run_refuses_a_command_failed_code_that_could_collide(fake, capsys, code):
    with pytest.raises(SystemExit) as exited:
        cli.main(["paper-run", "--command-failed-code", code, "--", "true"])
    assert exited.value.code == ExitCode.BAD_INPUT
    assert f"argument --command-failed-code: '{code}' is not an exit code of a failed command (allowed: 11-255" in \
        capsys.readouterr().err
    assert fake.calls == []
