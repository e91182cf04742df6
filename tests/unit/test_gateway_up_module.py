"""ibgw_gateway_up against a fake ``docker`` whose container log grows while the module waits, as the real image's
does (IBC's lines among socat's): the wait ends at IBC's first telling line, and a soft restart waits for the new
session's login."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args

from ibgw_ops.on_host import gateway_log, gateway_start, ibc_command, tws_probe
from tests.support.lab import wait_for
from tests.support.layout import MODULE_UTILS_PACKAGE, MODULES

MODULE = MODULES / "ibgw_gateway_up.py"
SOCAT = "2024/02/08 01:58:53 socat[24204] E connect(5, AF=2 127.0.0.1:4002, 16): Connection refused"
# The fake docker: the container's state, its log (one "time.time()<TAB>line" a line) and the commands sent to IBC.
FAKE_DOCKER = f"""#!{sys.executable}
import json, os, sys, time
state = os.path.join(os.environ["FAKE_DOCKER"], "state")
log = os.path.join(os.environ["FAKE_DOCKER"], "log")
args = sys.argv[1:]
if args[0] == "image":
    sys.exit(1)
if args[0] == "inspect" and args[2] == "{{{{json .}}}}":
    if not os.path.exists(state):
        sys.exit(1)
    status, restarts = open(state).read().split()
    print(json.dumps(dict(State=dict(Status=status, Running=status == "running", ExitCode=1,
                                     StartedAt="2026-12-01T09:00:00Z", FinishedAt="2026-12-01T09:05:00Z"),
                          RestartCount=int(restarts), Id="c" * 64, Config=dict(Image="ib-gateway:old"),
                          Image="sha256:1")))
elif args[0] == "inspect":
    sys.exit(print(open(state).read()) if os.path.exists(state) else 1)
if args[0] == os.environ.get("FAKE_DOCKER_HANGS"):
    child = __import__("subprocess").Popen(["sleep", "60"])
    open(os.path.join(os.environ["FAKE_DOCKER"], "hung"), "w").write(f"{{os.getpid()}} {{child.pid}}")
    sys.exit(child.wait())
if args[0] == "start":
    open(state, "w").write("running 0")
if args[0] == "exec":
    open(os.path.join(os.environ["FAKE_DOCKER"], "commands"), "a").write("RESTART\\n")
    print("OK RESTART in progress")
if args[0] == "logs":
    since = float(args[args.index("--since") + 1]) if "--since" in args else 0.0
    done = 0
    while True:
        lines = open(log).read().splitlines() if os.path.exists(log) else []
        for line in lines[done:]:
            stamp, _, text = line.partition("\\t")
            if float(stamp) >= since:
                print(text, flush=True)
        done = len(lines)
        if "--follow" not in args:
            break
        time.sleep(0.02)
"""


def ibc(text: str) -> str:
    return f"{time.strftime('%Y-%m-%d %H:%M:%S')}:123 IBC: {text}"


class Gateway:
    """The fake docker's container, written to by the test while the module waits."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.api_ready = False

    def write(self, *lines: str, at: float | None = None) -> None:
        with (self.directory / "log").open("a") as log:
            log.writelines(f"{time.time() if at is None else at}\t{line}\n" for line in lines)

    def run(self) -> None:
        (self.directory / "state").write_text("running 0")

    def after(self, trigger: str, then: Callable[[], None]) -> None:
        """Call ``then`` in a thread once the container starts ("state") or IBC gets RESTART ("commands")."""

        def wait_and_call() -> None:
            while not (self.directory / trigger).exists():
                time.sleep(0.02)
            then()

        threading.Thread(target=wait_and_call, daemon=True).start()


@pytest.fixture
def gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DOCKER", str(tmp_path))
    fake = Gateway(tmp_path)

    def probe(*args: Any, **kwargs: Any) -> tws_probe.ProbeResult:
        return tws_probe.ProbeResult(tws_probe.READY if fake.api_ready else tws_probe.REFUSED)

    monkeypatch.setattr(tws_probe, "probe", probe)
    yield fake


@pytest.fixture
def module(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The module file imported as Ansible ships it, its module_utils being the package's modules."""
    monkeypatch.setitem(sys.modules, f"{MODULE_UTILS_PACKAGE}.gateway_start", gateway_start)
    spec = importlib.util.spec_from_file_location("ibgw_gateway_up", MODULE)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def run(module: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str], *, soft_restart: bool = False,
        **args: Any) -> dict[str, Any]:
    """The module with deploy's start settings (the defaults of roles/ib_gateway, short waits), ``args`` on top."""
    (tmp_path / "compose.yaml").touch()
    settings = {"compose": ["docker", "compose"], "container": "ibgw-live", "image": "ib-gateway:stable",
                "compose_file": str(tmp_path / "compose.yaml"), "pending_marker": str(tmp_path / "pending"),
                "lock_file": str(tmp_path / "lock"), "lock_timeout": 900.0, "deadman_seconds": 0,
                "deadman_unit": "", "stop_command": "", "signin_record": "",
                "previous_log": str(tmp_path / "previous.log"), "previous_state": str(tmp_path / "previous.json"),
                "previous_lines": 1000, "soft_restart": False, "restart_policy": "no", "command_port": 7462,
                "host": "127.0.0.1", "port": 4001, "client_id": 999, "wait": 30.0, "interval": 0.05, **args}
    (tmp_path / "start.json").write_text(json.dumps(settings))
    with patch_module_args({"settings": str(tmp_path / "start.json"), "soft_restart": soft_restart}), \
            pytest.raises(SystemExit):
        module.main()
    return dict(json.loads(capsys.readouterr().out))


def test_a_wrong_password_ends_the_wait_at_ibc_s_first_login_failure(module, gateway, tmp_path, capsys):
    gateway.after("state", lambda: gateway.write(ibc("Login attempt: 1"), SOCAT, ibc("Login failed"),
                                                 ibc("Cold restart in progress"), *[SOCAT] * 50))
    begun = time.monotonic()
    result = run(module, tmp_path, capsys)
    assert time.monotonic() - begun < 5
    assert (result["failed"], result["reason"], result["started"]) == (True, gateway_log.LOGIN_FAILED, True)
    assert result["msg"].startswith("IBC: Login failed: refused")
    assert [line.partition(" IBC: ")[2] for line in result["log_tail"]] == [
        "Login attempt: 1", "Login failed", "Cold restart in progress"]


def test_too_many_failed_attempts_say_the_account_may_be_locked(module, gateway, tmp_path, capsys):
    gateway.after("state", lambda: gateway.write(ibc(
        "Too many failed login attempts. Please wait 4 minutes & 47 seconds before attempting to re-login again.")))
    result = run(module, tmp_path, capsys)
    assert result["reason"] == gateway_log.LOGIN_FAILED
    assert "may be locked; IBKR asked to wait 4 minutes & 47 seconds" in result["msg"]


def test_a_session_left_to_another_login_ends_the_wait(module, gateway, tmp_path, capsys):
    gateway.after("state", lambda: gateway.write(
        ibc("End this session and let the other session proceed (scenario 2)")))
    assert run(module, tmp_path, capsys)["reason"] == gateway_log.SESSION_TAKEN


def test_a_soft_restart_is_ready_only_after_the_new_session_s_login(module, gateway, tmp_path, capsys):
    gateway.run()
    gateway.api_ready = True  # the old session answers until IBC restarts
    gateway.write(ibc("Login has completed"), at=time.time() - 60)
    restarted: list[float] = []

    def restart() -> None:
        restarted.append(time.monotonic())
        gateway.write(ibc("Setting auto-restart time to 01:59 AM"))
        time.sleep(0.5)
        gateway.write(ibc("Login has completed"))

    gateway.after("commands", restart)
    result = run(module, tmp_path, capsys, soft_restart=True)
    assert (result.get("failed", False), result["ready"], result["restarted"]) == (False, True, True)
    assert time.monotonic() - restarted[0] >= 0.5


def test_a_soft_restart_without_a_new_login_fails_though_the_old_session_answers(module, gateway, tmp_path, capsys,
                                                                                 monkeypatch):
    monkeypatch.setattr(gateway_start, "RESTART_LEAD", 0.0)
    gateway.run()
    gateway.api_ready = True
    gateway.write(ibc("Login has completed"), at=time.time() - 60)
    result = run(module, tmp_path, capsys, soft_restart=True, wait=0.5)
    assert (result["failed"], result["ready"], result["reason"]) == (True, False, "not_ready")
    assert result["msg"].startswith("IBC logged no new login within 0.5 s of RESTART")


def test_a_start_keeps_how_the_replaced_container_ended_and_its_last_lines(module, gateway, tmp_path, capsys):
    (tmp_path / "state").write_text("exited 2")
    gateway.write(*[ibc(f"line {n}") for n in range(5)], at=0.0)
    gateway.api_ready = True
    result = run(module, tmp_path, capsys, previous_lines=3)
    assert (result.get("failed", False), result["started"]) == (False, True)
    kept = json.loads((tmp_path / "previous.json").read_text())
    assert {key: kept[key] for key in ("id", "image", "container", "exit_code", "restart_count", "finished_at")} == {
        "id": "c" * 12, "image": "ib-gateway:old", "container": "exited", "exit_code": 1, "restart_count": 2,
        "finished_at": "2026-12-01T09:05:00Z"}
    # The fake docker ignores --tail; the kept lines are what docker logs printed, in order.
    assert [line.partition(" IBC: ")[2] for line in (tmp_path / "previous.log").read_text().splitlines()] == [
        f"line {n}" for n in range(5)]
    assert {oct((tmp_path / name).stat().st_mode & 0o777) for name in ("previous.json", "previous.log")} == {"0o640"}


def test_a_first_start_keeps_nothing(module, gateway, tmp_path, capsys):
    gateway.api_ready = True
    assert run(module, tmp_path, capsys)["started"] is True
    assert not (tmp_path / "previous.json").exists()


def window_settings(tmp_path: Path, **overrides: Any) -> Path:
    """A start.json as deploy writes it, with fake systemd tools that record their arguments beside it."""
    for tool in ("systemd-run", "systemctl"):
        script = tmp_path / "bin" / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >>{tmp_path}/systemd\n')
        script.chmod(0o755)
    stop = tmp_path / "stop"
    stop.write_text(f"#!/bin/sh\necho stopped >>{tmp_path}/stops\n")
    stop.chmod(0o755)
    (tmp_path / "compose.yaml").touch()
    settings = {"compose": ["docker", "compose"], "container": "ibgw-paper", "image": "ib-gateway:1",
                "compose_file": str(tmp_path / "compose.yaml"), "pending_marker": str(tmp_path / "pending"),
                "lock_file": str(tmp_path / "lock"), "lock_timeout": 5.0, "deadman_seconds": 14400,
                "deadman_unit": "ibgw-deadman-paper", "stop_command": str(stop), "stop_grace_period": 90,
                "signin_record": "",
                "previous_log": str(tmp_path / "previous.log"), "previous_state": str(tmp_path / "previous.json"),
                "previous_lines": 10, "soft_restart": False, "restart_policy": "no", "command_port": 7462,
                "host": "127.0.0.1", "port": 4002, "client_id": 999, "wait": 2.0, "interval": 0.05,
                "alert_host": "gw1", "alerts": {"webhook_file": str(tmp_path / "no-webhook"), "webhook_timeout": 1.0,
                                                 "apprise_file": str(tmp_path / "no-apprise"),
                                                 "spool_dir": str(tmp_path / "spool")},
                **overrides}
    path = tmp_path / "start.json"
    path.write_text(json.dumps(settings))
    return path


def test_a_window_s_start_on_the_vm_arms_the_dead_man_switch_until_the_window_s_end(gateway, tmp_path, capsys):
    gateway.api_ready = True
    end = (datetime.now(UTC) + timedelta(hours=2)).strftime("%H:%M")  # in two hours, less this minute's seconds
    assert gateway_start.main([str(window_settings(tmp_path)), "--until", end, "--time-zone", "UTC"]) == 0
    assert capsys.readouterr().out == "ready: paper on 127.0.0.1:4002 (accounts -)\n"
    armed = next(line for line in (tmp_path / "systemd").read_text().splitlines() if line.startswith("systemd-run"))
    assert 7200 - 60 <= int(armed.split("--on-active=")[1].split("s ")[0]) <= 7200 + 1
    assert not (tmp_path / "stops").exists()


def test_a_window_s_failed_start_stops_paper_again_and_says_why_in_one_alert_line(gateway, tmp_path, capsys):
    gateway.after("state", lambda: gateway.write(ibc("Login attempt: 1"), ibc("Login failed")))
    assert gateway_start.main([str(window_settings(tmp_path))]) == 1
    out = capsys.readouterr().out
    assert out.startswith("IBGW_ALERT login_failed paper a window's start failed: IBC: Login failed")
    assert out.count("\n") == 1
    assert (tmp_path / "stops").read_text() == "stopped\n"


def test_a_hung_docker_call_in_a_window_s_start_is_killed_and_the_start_fails_naming_it(gateway, tmp_path, capsys,
                                                                                       monkeypatch):
    monkeypatch.setattr(gateway_start, "COMMAND_TIMEOUT", 1.0)
    monkeypatch.setenv("FAKE_DOCKER_HANGS", "start")
    assert gateway_start.main([str(window_settings(tmp_path))]) == 1
    assert capsys.readouterr().out.startswith(
        "IBGW_ALERT not_ready paper a window's start failed: docker start ibgw-paper failed: docker start ibgw-paper "
        "did not finish within 1 s and was killed")
    assert (tmp_path / "stops").read_text() == "stopped\n"
    wait_until_gone(tmp_path / "hung")


def test_a_hung_docker_call_in_the_module_is_killed_and_the_start_fails_naming_it(module, gateway, tmp_path, capsys,
                                                                                  monkeypatch):
    monkeypatch.setattr(gateway_start, "COMMAND_TIMEOUT", 1.0)
    monkeypatch.setenv("FAKE_DOCKER_HANGS", "start")
    result = run(module, tmp_path, capsys)
    assert result["failed"] is True
    assert "docker start ibgw-live did not finish within 1 s and was killed" in result["msg"]
    wait_until_gone(tmp_path / "hung")


def wait_until_gone(pids_file: Path) -> None:
    """Wait up to 5 s for the processes the file names to be gone: SIGKILL ends a process only once the kernel
    schedules it, which a loaded machine may delay past the kill's return."""
    pids = [int(pid) for pid in pids_file.read_text().split()]
    wait_for("the hung docker and what it started killed", lambda: not any(map(is_alive, pids)), timeout=5,
             interval=0.05)


def is_alive(pid: int) -> bool:
    """Whether the process runs (a zombie waiting for its parent does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_timeouts_outlast_every_legitimate_call_of_a_timer_s_start(monkeypatch):
    # The longest of the docker calls: IBC's answer through docker exec, as long as ibc_command's own run allows.
    assert ibc_command.ANSWER_TIMEOUT + 25 < gateway_start.COMMAND_TIMEOUT
    given: list[float] = []
    real = gateway_start._bounded

    def bounded(argv: list[str], timeout: float) -> tuple[int, str, str]:
        given.append(timeout)
        return real(argv, timeout)

    monkeypatch.setattr(gateway_start, "_bounded", bounded)
    assert gateway_start._stop({"stop_command": "true", "lock_timeout": 900.0, "stop_grace_period": 120})[0] == 0
    # The stop script: the lock's wait, IBC's STOP, the grace period in docker wait and again in compose stop.
    (timeout,) = given
    assert timeout > 900 + ibc_command.ANSWER_TIMEOUT + 25 + 2 * 120


def signin_settings(tmp_path: Path, **overrides: Any) -> Path:
    """Live's start.json for the VM's weekly sign-in; its stop script stops the fake container and forgets the
    sign-in, as the role's does."""
    path = window_settings(tmp_path, container="ibgw-live", port=4001, deadman_seconds=0,
                           signin_record=str(tmp_path / "signed-in-at"), **overrides)
    (tmp_path / "stop").write_text(f"#!/bin/sh\necho stopped >>{tmp_path}/stops\necho 'exited 0' >{tmp_path}/state\n"
                                   f"rm -f {tmp_path}/signed-in-at\n")
    return path


def signin(tmp_path: Path, capsys: pytest.CaptureFixture[str], **overrides: Any) -> tuple[int, list[str]]:
    code = gateway_start.main([str(signin_settings(tmp_path, **overrides)), "--signin", "--time-zone",
                               "America/New_York"])
    return code, capsys.readouterr().out.splitlines()


def test_the_vm_s_sign_in_stops_live_alerts_with_the_deadline_and_records_the_approved_login(gateway, tmp_path, capsys):
    gateway.run()
    gateway.after("stops", lambda: setattr(gateway, "api_ready", True))
    code, out = signin(tmp_path, capsys)
    assert code == 0, out
    assert out[0].startswith("IBGW_ALERT 2fa_needed live the VM's weekly sign-in started: approve the IBKR Mobile "
                             "notification now, by ")
    assert out[0].endswith(("EST at the latest", "EDT at the latest"))
    assert out[1] == "ready: live on 127.0.0.1:4001 (accounts -)"
    assert out[2].startswith(f"signed in: live's weekly sign-in is recorded in {tmp_path}/signed-in-at; the session "
                             "lasts until ")
    signed_in = datetime.fromisoformat((tmp_path / "signed-in-at").read_text().strip())
    assert abs((datetime.now(UTC) - signed_in).total_seconds()) < 60
    assert (tmp_path / "stops").read_text() == "stopped\n", "one tidy stop, before the start"


def test_the_vm_s_sign_in_not_approved_stops_live_again_and_says_so(gateway, tmp_path, capsys):
    def push_once_started() -> None:
        while (tmp_path / "state").read_text() != "running 0":
            time.sleep(0.02)
        gateway.write(ibc("Second Factor Authentication initiated"))

    gateway.after("stops", push_once_started)
    code, out = signin(tmp_path, capsys, wait=3.0)
    assert code == 1
    assert out[0].startswith("IBGW_ALERT 2fa_needed live the VM's weekly sign-in started")
    assert out[1].startswith("IBGW_ALERT 2fa_needed live the VM's weekly sign-in failed: 2FA not approved in time: "
                             "not ready within 3 s")
    assert out[1].endswith("; live is stopped again")
    assert (tmp_path / "stops").read_text() == "stopped\nstopped\n"
    assert not (tmp_path / "signed-in-at").exists()


def test_the_vm_s_sign_in_is_refused_inside_the_protected_window_and_changes_nothing(gateway, tmp_path, capsys):
    always = {"time_zone": "UTC", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00",
              "end": "00:00"}
    code, out = signin(tmp_path, capsys, protected_window=always)
    assert code == 1
    assert out == ["IBGW_ALERT signin_due live the VM's weekly sign-in was refused: it falls inside the protected "
                   "window (mon, tue, wed, thu, fri, sat, sun 00:00-00:00 UTC); nothing was changed"]
    assert not (tmp_path / "stops").exists()


def test_the_vm_s_sign_in_leaves_a_session_signed_in_since_the_reset_alone(gateway, tmp_path, capsys):
    gateway.run()
    path = signin_settings(tmp_path)
    (tmp_path / "signed-in-at").write_text(datetime.now(UTC).isoformat(timespec="seconds") + "\n")
    assert gateway_start.main([str(path), "--signin"]) == 0
    assert capsys.readouterr().out.startswith("already signed in: live signed in at ")
    assert not (tmp_path / "stops").exists()
