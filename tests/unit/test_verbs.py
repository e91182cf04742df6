"""Every playbook verb runs exactly the expected playbooks with exactly the expected extra variables (kayobe
style: ansible_runner.run is replaced by a recorder)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import ansible_runner
import pytest

from ibgw_ops import cli
from ibgw_ops.errors import ExitCode
from ibgw_ops.paths import data_dir
from tests.unit.fake_runner import FakeRunner, failed, ok, stats

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
    (["paper-up"], [("start.yml", {"ib_gateway_target": "paper"})]),
    (["paper-up", "--timeout", "120"],
     [("start.yml", {"ib_gateway_target": "paper", "ib_gateway_ready_timeout": 120})]),
    (["paper-down"], [("stop.yml", {"ib_gateway_target": "paper"})]),
    (["paper-run", "--", "true"], [("start.yml", {"ib_gateway_target": "paper"}),
                                   ("stop.yml", {"ib_gateway_target": "paper"})]),
])
def test_each_verb_runs_its_playbooks_with_its_extra_vars(fake, argv, expected):
    fake.script["start.yml"] = ([ok(READY), stats()], "successful")
    fake.script["restart.yml"] = ([ok(READY), stats()], "successful")
    assert cli.main(argv) == ExitCode.OK
    assert fake.playbooks() == expected
    for call in fake.calls:
        assert call["playbook"] == str(data_dir() / "playbooks" / Path(call["playbook"]).name)
        assert call["inventory"] == os.environ["IBGW_OPS_INVENTORY"]
        assert call["cmdline"] == ("--check --diff" if "--check" in argv else None)
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
    env = call["envvars"]
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    assert env["ANSIBLE_CONFIG"] == str(data_dir() / "ansible.cfg")
    assert Path(env["ANSIBLE_CONFIG"]).is_file()
    assert not [name for name in env if "PASS" in name or "SECRET" in name]


def test_the_vault_password_goes_to_the_prompt_only(fake, monkeypatch):
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
    ([failed("ib_gateway_target: 'demo' matches no instance (allowed: all, live, paper).",
             path="/x/roles/ib_gateway/tasks/validate.yml:40"), stats(failures=1)], ExitCode.BAD_INPUT,
     ["ib_gateway_target", "allowed: all, live, paper"]),
    ([failed("non-zero return code", stderr="line one\nno space left on device"), stats(failures=1)],
     ExitCode.FAILED, ["non-zero return code: no space left on device"]),
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


def test_a_run_that_fails_before_any_host_shows_what_ansible_said(fake, capsys):
    fake.script["status.yml"] = ([{"event": "error", "stdout": "[ERROR]: no hosts to target.\n\n"}], "failed")
    assert cli.main(["status", "--limit", "nosuch"]) == ExitCode.FAILED
    assert "before any host reported a result; Ansible said: [ERROR]: no hosts to target." in capsys.readouterr().err
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


def test_paper_run_hands_the_gateway_to_the_command_and_exits_with_its_code(fake, tmp_path):
    fake.script["start.yml"] = ([ok(READY), stats()], "successful")
    seen = tmp_path / "env.json"
    script = f"import json, os; json.dump(dict(os.environ), open({str(seen)!r}, 'w')); raise SystemExit(7)"
    assert cli.main(["paper-run", "--client-id", "12", "--", "python3", "-c", script]) == 7
    env = json.loads(seen.read_text())
    assert {k: env[k] for k in env if k.startswith("IBGW_") and not k.startswith("IBGW_OPS_")} == {
        "IBGW_API_HOST": "10.0.0.5", "IBGW_API_PORT": "4002", "IBGW_CLIENT_ID": "12", "IBGW_INSTANCE": "paper",
        "IBGW_ACCOUNTS": "DU1"}
    assert [p for p, _ in fake.playbooks()] == ["start.yml", "stop.yml"]


def test_paper_run_takes_paper_down_when_the_command_cannot_run_or_is_killed(fake):
    fake.script["start.yml"] = ([ok(READY), stats()], "successful")
    assert cli.main(["paper-run", "--", "/nonexistent/pipeline"]) == 127
    assert cli.main(["paper-run", "--", "sh", "-c", "kill -TERM $$"]) == 128 + signal.SIGTERM
    assert [p for p, _ in fake.playbooks()] == ["start.yml", "stop.yml"] * 2


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


@pytest.mark.parametrize("argv", [
    ["up"], ["up", "Live"], ["up", "paper", "--timeout", "0"], ["down", "../etc"], ["logs", "all", "-n", "x"],
    ["paper-run"], ["paper-run", "--"], ["paper-run", "--client-id", "-3", "--", "true"],
])
def test_bad_arguments_exit_2_before_any_run(fake, argv, capsys):
    with pytest.raises(SystemExit) as raised:
        code = cli.main(argv)
        raise SystemExit(code)
    assert raised.value.code == ExitCode.BAD_INPUT
    assert fake.calls == []
    assert capsys.readouterr().err
