"""The gateway stand-in honours the image's contract (run as a local process; no Docker needed)."""

from __future__ import annotations

import hashlib
import signal
import socket
import time

import pytest
from ib_async import IB

from tests.conftest import CANARY
from tests.tws import RawClient


def command(port: int, *lines: str) -> list[str]:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        stream = sock.makefile("rw")
        answers = []
        for line in lines:
            stream.write(line + "\n")
            stream.flush()
            answers.append(stream.readline().strip())
        return answers


def test_ib_async_reads_managed_accounts_only_after_the_login_delay(standin):
    gateway = standin(STANDIN_LOGIN_DELAY="1.5", STANDIN_ACCOUNTS="DU111,DU222")
    gateway.wait_for("accepting")
    ib = IB()
    with pytest.raises((ConnectionError, TimeoutError, OSError)):
        ib.connect("127.0.0.1", gateway.port, clientId=11, timeout=1)
    assert ib.managedAccounts() == []
    gateway.wait_for("Login has completed")
    ib = IB()
    ib.connect("127.0.0.1", gateway.port, clientId=11, timeout=5)
    try:
        assert ib.managedAccounts() == ["DU111", "DU222"]
    finally:
        ib.disconnect()


def test_accepts_tcp_at_once_but_closes_before_login(standin):
    gateway = standin(STANDIN_LOGIN_DELAY="30")
    gateway.wait_for("accepting")
    client = RawClient(gateway.port)
    assert client.closes_without_handshake()


def test_both_password_variables_exit_1_like_the_real_image(standin, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text(CANARY)
    gateway = standin(TWS_PASSWORD_FILE=str(secret))
    assert gateway.exit_code() == 1
    assert any("TWS_PASSWORD and TWS_PASSWORD_FILE are both set" in line for line in gateway.lines)


def test_password_file_accepted_and_never_logged(standin, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text(CANARY + "\n")
    gateway = standin(
        TWS_PASSWORD=None, TWS_PASSWORD_FILE=str(secret), STANDIN_ACCEPT_USERID="trader",
        STANDIN_ACCEPT_PASSWORD_SHA256=hashlib.sha256(CANARY.encode()).hexdigest(),
    )
    gateway.wait_for("Login has completed")
    client = RawClient(gateway.port)
    client.handshake(5)
    assert client.read_until("15")[2] == "DU1234567"
    gateway.stop()
    gateway.exit_code()
    assert not any(CANARY in line for line in gateway.lines)


@pytest.mark.parametrize(("userid", "password"), [("trader", "wrong"), ("intruder", CANARY)])
def test_wrong_credentials_log_a_login_failure_and_exit(standin, userid, password):
    gateway = standin(
        TWS_USERID=userid, TWS_PASSWORD=password, STANDIN_ACCEPT_USERID="trader",
        STANDIN_ACCEPT_PASSWORD_SHA256=hashlib.sha256(CANARY.encode()).hexdigest(),
    )
    assert gateway.exit_code() == 1
    assert any("Login failed" in line for line in gateway.lines)


@pytest.mark.parametrize("missing", ["TWS_USERID", "TWS_PASSWORD"])
def test_missing_login_settings_exit_1(standin, missing):
    gateway = standin(**{missing: None})
    assert gateway.exit_code() == 1
    assert any(missing in line for line in gateway.lines)


def test_bad_trading_mode_exits_1(standin):
    gateway = standin(TRADING_MODE="demo")
    assert gateway.exit_code() == 1
    assert any("TRADING_MODE='demo'" in line for line in gateway.lines)


def test_a_second_client_with_the_same_id_gets_error_326(standin):
    gateway = standin()
    gateway.wait_for("Login has completed")
    first = RawClient.in_session(gateway.port, 7)
    second = RawClient(gateway.port)
    second.handshake(7)
    error = second.read_until("4")
    assert error[3] == "326"
    with pytest.raises(ConnectionError):
        second.read()
    first.close()


def test_session_taken_with_secondary_exits(standin):
    gateway = standin(EXISTING_SESSION_DETECTED_ACTION="secondary")
    gateway.wait_for("Login has completed")
    gateway.signal(signal.SIGUSR1)
    assert gateway.exit_code() == 0
    assert any("taken by a login elsewhere" in line for line in gateway.lines)


def test_session_taken_with_primary_disconnects_then_reclaims(standin):
    gateway = standin(EXISTING_SESSION_DETECTED_ACTION="primary", STANDIN_RECONNECT_DELAY="0.3")
    gateway.wait_for("Login has completed")
    client = RawClient(gateway.port)
    client.handshake(3)
    client.read_until("9")
    gateway.signal(signal.SIGUSR1)
    assert client.read_until("4")[3] == "1100"
    assert client.read_until("4")[3] == "1102"
    assert gateway.proc.poll() is None


def test_existing_session_at_start_with_secondary_never_logs_in(standin):
    gateway = standin(EXISTING_SESSION_DETECTED_ACTION="secondary", STANDIN_OTHER_SESSION="yes")
    assert gateway.exit_code() == 0
    assert not any("Login has completed" in line for line in gateway.lines)


def test_never_approved_second_factor_keeps_the_api_closed(standin):
    gateway = standin(STANDIN_NEVER_LOGIN="yes")
    gateway.wait_for("second factor")
    time.sleep(0.3)
    assert RawClient(gateway.port).closes_without_handshake()


def test_command_server_stop_shuts_down_tidily(standin):
    gateway = standin()
    gateway.wait_for("command server listening")
    assert command(gateway.command_port, "STOP") == ["OK"]
    assert gateway.exit_code() == 0


def test_command_server_restart_logs_in_again_and_keeps_autorestart(standin):
    gateway = standin(STANDIN_LOGIN_DELAY="0.5")
    gateway.wait_for("Login has completed")
    assert command(gateway.command_port, "RESTART", "BOGUS") == ["OK", "ERROR: unknown command"]
    gateway.wait_for("restarting")
    assert RawClient(gateway.port).closes_without_handshake()
    gateway.wait_for("Login has completed after restart")
    assert (gateway.settings / "autorestart").exists()
    client = RawClient(gateway.port)
    client.handshake(1)
    assert client.read_until("9")


def test_command_server_is_off_unless_the_template_enables_it(standin, tmp_path):
    template = tmp_path / "off.tmpl"
    template.write_text("CommandServerPort=0\n")
    gateway = standin(STANDIN_IBC_TEMPLATE=str(template))
    gateway.wait_for("Login has completed")
    assert not any("command server" in line for line in gateway.lines)


def test_sigterm_exits_0(standin):
    gateway = standin()
    gateway.wait_for("Login has completed")
    gateway.signal(signal.SIGTERM)
    assert gateway.exit_code() == 0
    assert any("tidily" in line for line in gateway.lines)


def test_time_zone_written_to_jts_ini_only_when_new(standin):
    first = standin(TIME_ZONE="Europe/London")
    first.wait_for("Login has completed")
    assert "TimeZone=Europe/London" in (first.settings / "jts.ini").read_text()
    first.stop()
    jts = first.settings / "jts.ini"
    jts.write_text("[Logon]\nTimeZone=America/New_York\n")
    second = standin(TIME_ZONE="Asia/Tokyo", TWS_SETTINGS_PATH=str(first.settings))
    second.wait_for("Login has completed")
    assert "America/New_York" in jts.read_text()


def test_says_it_is_a_rehearsal_stand_in(standin):
    gateway = standin()
    assert "REHEARSAL STAND-IN" in gateway.wait_for("STAND-IN")
