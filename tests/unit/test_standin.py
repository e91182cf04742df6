"""The stand-in's IBC and gateway (gateway.py behind a real socat, as a local process; no Docker needed).

Each test names the upstream behaviour it checks (IbcAlpha/IBC 3.24.1 unless said otherwise). The image's shell
side (run.sh, ibcstart.sh's loop, the exit status on SIGTERM) is checked on the real engine in
tests/integration/test_standin_image.py.
"""

from __future__ import annotations

import hashlib
import re
import signal
import socket
import time

import pytest
from ib_async import IB

from ibgw_ops.lab.standin.gateway import knobs
from tests.conftest import CANARY
from tests.support.tws import RawClient

IBC_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3} IBC: ")
ACCEPT_CANARY = {"STANDIN_ACCEPT_USERID": "trader",
                 "STANDIN_ACCEPT_PASSWORD_SHA256": hashlib.sha256(CANARY.encode()).hexdigest()}


def command(port: int, *lines: str, answers_each: int = 1) -> list[str]:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        stream = sock.makefile("rw")
        answers = []
        for line in lines:
            stream.write(line + "\n")
            stream.flush()
            answers.extend(stream.readline().strip() for _ in range(answers_each))
        return answers


def synchronised(gateway) -> RawClient:
    """An API client of the logged-in gateway, past nextValidId: ready to hear the session's notices."""
    gateway.logged_in()
    client = RawClient(gateway.port)
    client.handshake(3)
    client.read_until("9")
    return client


def test_ib_async_reads_managed_accounts_only_after_the_login_delay(standin):
    gateway = standin(STANDIN_LOGIN_DELAY="1.5", STANDIN_ACCOUNTS="DU111,DU222")
    gateway.wait_for("Login attempt: 1")
    ib = IB()
    with pytest.raises((ConnectionError, TimeoutError, OSError)):
        ib.connect("127.0.0.1", gateway.port, clientId=11, timeout=1)
    assert ib.managedAccounts() == []
    gateway.logged_in()
    ib = IB()
    ib.connect("127.0.0.1", gateway.port, clientId=11, timeout=5)
    try:
        assert ib.managedAccounts() == ["DU111", "DU222"]
    finally:
        ib.disconnect()


def test_socat_accepts_at_once_but_closes_before_login(standin):
    gateway = standin(STANDIN_LOGIN_DELAY="30")
    gateway.wait_for("Login attempt: 1")
    assert RawClient(gateway.port).closes_without_handshake()


def test_every_console_line_is_ibc_s_format_and_the_password_never_appears(standin):
    gateway = standin(**ACCEPT_CANARY)
    gateway.logged_in()
    client = RawClient(gateway.port)
    client.handshake(5)
    assert client.read_until("15")[2] == "DU1234567"
    gateway.stop()
    gateway.exit_code()
    ibc = [line for line in gateway.lines if not line.startswith("REHEARSAL STAND-IN")]
    assert ibc and all(IBC_LINE.match(line) for line in ibc), ibc
    assert not any(CANARY in line for line in gateway.lines)


@pytest.mark.parametrize(("userid", "password"), [("trader", "wrong"), ("intruder", CANARY), ("trader", "")])
def test_wrong_credentials_fail_then_ask_ibcstart_for_a_cold_restart(standin, userid, password):
    # LoginFailedDialogHandler + StopTask(forceColdRestart): a COLDRESTART<session id> file, then halt(0).
    gateway = standin(TWS_USERID=userid, TWS_PASSWORD=password, **ACCEPT_CANARY)
    assert gateway.exit_code() == 0
    text = [line.split(" IBC: ", 1)[-1] for line in gateway.lines]
    assert text[text.index("Login attempt: 1"):] == [
        "Login attempt: 1", "Login failed", "Cold restart in progress",
        "Login has not completed: exiting immediately"]
    assert (gateway.settings / "COLDRESTARTtest").exists()


def test_too_many_failed_attempts_quote_ibkr_s_wait_and_stay_without_relogin(standin):
    gateway = standin(STANDIN_LOCKED_SECONDS="287")
    line = gateway.wait_for("Too many failed login attempts")
    assert line.endswith("Please wait 4 minutes & 47 seconds before attempting to re-login again.")
    time.sleep(0.3)
    assert gateway.proc.poll() is None
    assert not any("Login has completed" in entry for entry in gateway.lines)


def test_a_second_client_with_the_same_id_gets_error_326(standin):
    gateway = standin()
    gateway.logged_in()
    first = RawClient.in_session(gateway.port, 7)
    second = RawClient(gateway.port)
    second.handshake(7)
    error = second.read_until("4")
    assert error[3] == "326"
    with pytest.raises(ConnectionError):
        second.read()
    first.close()


@pytest.mark.parametrize(("action", "scenario", "exits"), [
    ("secondary", "End this session and let the other session proceed (scenario 2)", True),
    ("primaryoverride", "Other session may be primary, so end this session and let the other one proceed "
                        "(scenario 6)", True),
    ("manual", "User must choose whether to continue with this session (scenario 1)", False),
    ("primary", "Continue this session and let the other session exit (scenario 5)", False),
])
def test_a_login_elsewhere_plays_ibc_s_scenario_for_the_logged_in_session(standin, action, scenario, exits):
    gateway = standin(EXISTING_SESSION_DETECTED_ACTION=action, STANDIN_RECONNECT_DELAY="0.3")
    client = synchronised(gateway)
    gateway.signal(signal.SIGUSR1)
    assert client.read_until("4")[3] == "1100"
    gateway.wait_for(scenario)
    if exits:
        assert gateway.exit_code() == 0
    elif action == "primary":
        assert client.read_until("4")[3] == "1102"
    else:
        assert gateway.proc.poll() is None


def test_an_outage_on_ibkr_s_side_is_1100_then_1102_with_the_session_kept(standin):
    gateway = standin(STANDIN_OUTAGE="0.5")
    client = synchronised(gateway)
    gateway.signal(signal.SIGUSR2)
    assert client.read_until("4")[3] == "1100"
    late = RawClient(gateway.port)
    late.handshake(4)
    assert late.read_until("4")[3] == "1100", "a client that connects during the outage hears it too"
    assert client.read_until("4")[3] == "1102"
    assert gateway.proc.poll() is None


def test_a_failed_connection_to_the_server_is_gateway_dialog_handler_s_cold_restart(standin):
    # GatewayDialogHandler: the dialog's text, "Cold restart in progress", StopTask(forceColdRestart) when logged in.
    gateway = standin(STANDIN_OUTAGE="0.2")
    gateway.logged_in()
    (gateway.settings / "standin-knobs").write_text("STANDIN_OUTAGE_END=failed\n")
    gateway.signal(signal.SIGUSR2)
    assert gateway.exit_code() == 0
    text = [line.split(" IBC: ", 1)[-1] for line in gateway.lines]
    assert text[text.index("Login has completed") + 1:] == [
        "Connection to server failed", "Cold restart in progress",
        "Login has completed: exiting via [File, Close] menu"]
    assert (gateway.settings / "COLDRESTARTtest").exists()


@pytest.mark.parametrize(("action", "other", "lines", "completes"), [
    ("secondary", "yes", ["End this session and let the other session proceed (scenario 2)"], False),
    ("bogus", "yes", ["ExistingSessionDetectedAction has an invalid value: bogus: assuming 'secondary'",
                      "End this session and let the other session proceed (scenario 2)"], False),
    ("manual", "yes", ["User must choose whether to continue with this session (scenario 1)"], False),
    ("primaryoverride", "yes", ["Don't know the type of the other session, so continue this one (scenario 3)"],
     True),
    ("primaryoverride", "primary", [
        "Don't know the type of the other session, so continue this one (scenario 3)",
        "Other session must be primary or primary override, so end this session and let the other one proceed "
        "(scenario 4)"], False),
])
def test_a_session_held_elsewhere_at_login_plays_ibc_s_scenario(standin, action, other, lines, completes):
    gateway = standin(EXISTING_SESSION_DETECTED_ACTION=action, STANDIN_OTHER_SESSION=other,
                      STANDIN_RECONNECT_DELAY="0.2")
    for line in lines:
        gateway.wait_for(line)
    if completes:
        gateway.logged_in()
    else:
        time.sleep(0.4)
        assert not any("Login has completed" in entry for entry in gateway.lines)


def test_live_2fa_never_approved_sends_one_push_and_waits_without_relogin(standin):
    # LoginManager.secondFactorAuthenticationDialogClosed with ReloginAfterSecondFactorAuthenticationTimeout=no.
    gateway = standin(TRADING_MODE="live", STANDIN_NEVER_LOGIN="yes", STANDIN_TWOFA_TIMEOUT="0.5",
                      RELOGIN_AFTER_TWOFA_TIMEOUT="no")
    gateway.wait_for("Second Factor Authentication initiated")
    assert RawClient(gateway.port).closes_without_handshake()
    gateway.wait_for("Re-login after second factor authentication timeout not required")
    time.sleep(0.3)
    assert sum("Second Factor Authentication initiated" in line for line in gateway.lines) == 1
    assert gateway.proc.poll() is None


def test_live_2fa_timeout_with_relogin_logs_in_again(standin):
    gateway = standin(TRADING_MODE="live", STANDIN_NEVER_LOGIN="yes", STANDIN_TWOFA_TIMEOUT="0.2",
                      RELOGIN_AFTER_TWOFA_TIMEOUT="yes")
    gateway.wait_for("Re-login after second factor authentication timeout in 5 second")
    gateway.wait_for("Login attempt: 2", timeout=10)


def test_paper_never_asks_for_a_second_factor(standin):
    gateway = standin(STANDIN_NEVER_LOGIN="yes")
    gateway.logged_in()
    assert not any("Second Factor" in line for line in gateway.lines)


def test_command_server_stop_replies_ok_and_exits_through_the_menu(standin):
    gateway = standin()
    gateway.logged_in()
    assert command(gateway.command_port, "STOP") == ["OK Shutting down: STOP command"]
    gateway.wait_for("Login has completed: exiting via [File, Close] menu")
    assert gateway.exit_code() == 0


def test_command_server_restart_keeps_the_old_session_until_the_next_minute(standin):
    # RestartTask: the auto-restart time is set to the next minute; the gateway then writes autorestart one
    # folder below the settings path and exits, for ibcstart.sh to start it again with -Drestart.
    gateway = standin()
    gateway.logged_in()
    sent = time.time()
    first, at = command(gateway.command_port, "RESTART", answers_each=2)
    assert first == "OK RESTART in progress"
    assert re.fullmatch(r"OK RESTART at (0[1-9]|1[0-2]):[0-5]\d (AM|PM)", at)
    assert re.search(r"IBC: Setting auto-restart time to \d\d:\d\d (AM|PM)$", gateway.wait_for("Setting auto-"))
    assert tws_ready(gateway.port)
    assert gateway.exit_code(timeout=65) == 0
    assert 1 < time.time() - sent <= 63
    assert len(list(gateway.settings.glob("*/autorestart"))) == 1


def test_a_restart_whose_token_was_not_kept_leaves_no_autorestart_file(standin):
    # IBC issue 290: the daily restart cannot resume; ibcstart.sh then finds no autorestart file and ends its loop.
    gateway = standin()
    gateway.logged_in()
    (gateway.settings / "standin-knobs").write_text("STANDIN_RESUME=no\n")
    assert command(gateway.command_port, "RESTART") == ["OK RESTART in progress"]
    assert gateway.exit_code(timeout=65) == 0
    assert list(gateway.settings.glob("*/autorestart")) == []


@pytest.mark.parametrize(("setting", "checkbox", "said", "read_only"), [
    ("no", "yes", "Read-Only API checkbox is now set to: false", False),
    ("yes", "yes", "Read-Only API checkbox is already set to: true", True),
    ("no", "missing", "could not find Read-Only API checkbox", True),
    ("", "yes", None, True),
])
def test_read_only_api_as_ibc_applies_it_and_an_order_on_a_read_only_api_gets_error_321(
        standin, setting, checkbox, said, read_only):
    # IbcTws.configureReadOnlyApi runs ConfigureReadOnlyApiTask only when ReadOnlyApi is set; a fresh Gateway's
    # own checkbox is set.
    gateway = standin(READ_ONLY_API=setting, STANDIN_READ_ONLY_CHECKBOX=checkbox)
    gateway.logged_in()
    if said:
        assert IBC_LINE.match(gateway.wait_for(said))
    else:
        with pytest.raises(AssertionError, match="no log line"):
            gateway.wait_for("Setting ReadOnlyApi", timeout=0.5)
    client = RawClient.in_session(gateway.port, 7)
    client.send(3, 45, 1, 0, "AAPL", "STK")
    answer = client.read_until("4") if read_only else []
    client.close()
    assert ("321" in answer) == read_only


def test_knobs_in_the_settings_folder_override_the_environment_s_from_the_next_start(tmp_path):
    assert knobs(tmp_path, {"STANDIN_RESUME": "yes", "PATH": "/bin"}) == {"STANDIN_RESUME": "yes", "PATH": "/bin"}
    (tmp_path / "standin-knobs").write_text("STANDIN_RESUME = no\nPATH=/evil\n# STANDIN_API_HANG=yes\n")
    assert knobs(tmp_path, {"STANDIN_RESUME": "yes", "PATH": "/bin"}) == {"STANDIN_RESUME": "no", "PATH": "/bin"}


def tws_ready(port: int) -> bool:
    client = RawClient(port)
    client.handshake(4)
    return bool(client.read_until("9"))


def test_invalid_commands_get_ibc_s_error(standin):
    gateway = standin()
    gateway.wait_for("CommandServer started")
    assert command(gateway.command_port, "BOGUS", "EXIT") == ["ERROR Command invalid", "OK Goodbye"]


def test_command_server_is_off_unless_the_template_enables_it(standin):
    gateway = standin(command_server=False)
    gateway.logged_in()
    assert any("CommandServer is not started because the port is not configured" in line for line in gateway.lines)


@pytest.mark.parametrize(("value", "accepted"), [("09:30 PM", True), ("9:30 PM", False), ("21:30", False)])
def test_auto_restart_time_is_parsed_as_hh_mm_a(standin, value, accepted):
    # ConfigureAutoLogoffOrRestartTimeTask: LocalTime.parse(value, "hh:mm a"), else an IbcException logged.
    gateway = standin(AUTO_RESTART_TIME=value)
    gateway.wait_for("Setting Auto restart time")
    refusal = "Auto restart time setting must be hh:mm AM or hh:mm PM"
    if accepted:
        with pytest.raises(AssertionError, match="no log line"):
            gateway.wait_for(refusal, timeout=0.5)
    else:
        gateway.wait_for(refusal)


def test_says_it_is_a_rehearsal_stand_in(standin):
    gateway = standin()
    assert "REHEARSAL STAND-IN" in gateway.wait_for("STAND-IN")
