"""The readiness probe against the stand-in, one test per state it must tell apart."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys

import pytest

from ibgw_ops.on_host import tws_probe
from tests.conftest import free_port
from tests.support.tws import RawClient


def test_refused_when_nothing_listens():
    assert tws_probe.probe("127.0.0.1", free_port(), timeout=2).state == tws_probe.REFUSED


def test_unreachable_when_the_connect_gets_no_answer():
    # A TEST-NET-1 address (RFC 5737) is never routed; the connect times out.
    result = tws_probe.probe("192.0.2.1", 4001, timeout=0.5)
    assert result.state in (tws_probe.UNREACHABLE, tws_probe.REFUSED)
    assert not result.ready


def test_not_ready_while_the_gateway_is_logging_in(standin):
    gateway = standin(STANDIN_LOGIN_DELAY="30")
    gateway.wait_for("Login attempt: 1")
    result = tws_probe.probe("127.0.0.1", gateway.port, timeout=2)
    assert result.state == tws_probe.NOT_READY
    assert result.elapsed < 2


def test_not_ready_when_the_port_accepts_but_never_answers():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        result = tws_probe.probe("127.0.0.1", server.getsockname()[1], timeout=0.5)
    assert result.state == tws_probe.NOT_READY


def test_ready_with_accounts_and_server_version(standin):
    gateway = standin(TRADING_MODE="paper", STANDIN_ACCOUNTS="DU111,DU222")
    gateway.logged_in()
    result = tws_probe.probe("127.0.0.1", gateway.port)
    assert result.ready and result.state == tws_probe.READY
    assert result.accounts == ["DU111", "DU222"]
    assert result.server_version == 176
    assert result.as_dict()["description"].startswith("logged in")


def test_hung_when_no_next_valid_id_arrives(standin):
    gateway = standin(STANDIN_API_HANG="yes")
    gateway.logged_in()
    # Long enough for the server version to arrive on a loaded machine; hung means no nextValidId in that time.
    result = tws_probe.probe("127.0.0.1", gateway.port, timeout=3)
    assert result.state == tws_probe.HUNG
    assert result.server_version == 176


def test_disconnected_from_ibkr(standin):
    gateway = standin(EXISTING_SESSION_DETECTED_ACTION="manual")
    gateway.logged_in()
    gateway.signal(signal.SIGUSR1)
    gateway.wait_for("Re-login to session")
    result = tws_probe.probe("127.0.0.1", gateway.port, timeout=15)
    assert result.state == tws_probe.DISCONNECTED
    assert 1100 in result.codes
    assert not result.ready


def test_client_id_in_use(standin):
    gateway = standin()
    gateway.logged_in()
    holder = RawClient.in_session(gateway.port, 999)
    try:
        result = tws_probe.probe("127.0.0.1", gateway.port, client_id=999)
        assert result.state == tws_probe.CLIENT_ID_CLASH
        assert tws_probe.probe("127.0.0.1", gateway.port, client_id=998).ready
    finally:
        holder.close()


def test_waiting_polls_until_the_gateway_becomes_ready(standin):
    gateway = standin(STANDIN_LOGIN_DELAY="2")
    gateway.wait_for("Login attempt: 1")
    assert not tws_probe.probe("127.0.0.1", gateway.port, timeout=1).ready
    result = tws_probe.wait_until_ready("127.0.0.1", gateway.port, timeout=20, interval=0.25)
    assert result.ready
    gateway.logged_in()


def test_waiting_gives_up_at_the_timeout(standin):
    gateway = standin(TRADING_MODE="live", STANDIN_NEVER_LOGIN="yes")
    gateway.wait_for("Second Factor Authentication initiated")
    result = tws_probe.wait_until_ready("127.0.0.1", gateway.port, timeout=1.5, interval=0.25)
    assert result.state == tws_probe.NOT_READY


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ibgw_ops", "probe", *args], capture_output=True, text=True,
                          check=False, timeout=30)


def test_cli_probe_exits_0_when_ready_with_accounts_in_json(standin):
    gateway = standin(STANDIN_ACCOUNTS="DU9")
    gateway.logged_in()
    result = run_cli(f"127.0.0.1:{gateway.port}", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["accounts"] == ["DU9"]


def test_cli_probe_exits_4_when_not_ready_and_names_the_state():
    result = run_cli(f"127.0.0.1:{free_port()}")
    assert result.returncode == 4
    assert "refused: nothing listens" in result.stdout


@pytest.mark.parametrize("address", ["localhost", "host:70000", ":4001", "host:http"])
def test_cli_probe_bad_address_exits_2(address):
    result = run_cli(address)
    assert result.returncode == 2
    assert "HOST:PORT" in result.stderr
