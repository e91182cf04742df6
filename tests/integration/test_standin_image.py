"""The stand-in image on the real engine: the image's user, ports, secrets and shutdown contract."""

from __future__ import annotations

import hashlib
import os
import time

import pytest
from ib_async import IB

from tests.conftest import CANARY, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def run_standin(lab, docker_client, tmp_path):
    started = []

    def start(environment: dict[str, str], **options: object):
        port = free_port()
        container = docker_client.containers.run(
            lab.host_vars()["ibgw_lab_standin_image"], detach=True, environment=environment,
            ports={"4004/tcp": ("127.0.0.1", port)}, **options,
        )
        started.append(container)
        return container, port

    yield start
    for container in started:
        container.remove(force=True)


@pytest.fixture
def secret_file(tmp_path):
    folder = tmp_path / "secrets"
    folder.mkdir()
    secret = folder / "tws_password"
    secret.write_text(CANARY)
    secret.chmod(0o400)
    os.chown(secret, 1000, 1000)
    return secret


def logs(container) -> str:
    return container.logs().decode()


def wait_for_log(container, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while text not in logs(container):
        assert time.monotonic() < deadline, logs(container)
        time.sleep(0.1)


def login_attempts(container) -> int:
    return logs(container).count(" IBC: Login attempt: ")


def test_runs_as_uid_1000_and_serves_ib_async_after_login(run_standin, secret_file):
    container, port = run_standin(
        {"TWS_USERID": "trader", "TWS_PASSWORD_FILE": "/run/secrets/tws_password", "TRADING_MODE": "paper",
         "STANDIN_LOGIN_DELAY": "2"},
        volumes={str(secret_file): {"bind": "/run/secrets/tws_password", "mode": "ro"}},
    )
    wait_for_log(container, "Login attempt: 1")
    assert container.exec_run("id -u").output.decode().strip() == "1000"
    early = IB()
    with pytest.raises((ConnectionError, TimeoutError, OSError)):
        early.connect("127.0.0.1", port, clientId=21, timeout=1)
    assert early.managedAccounts() == []
    # run_socat.sh: socat accepted, found nothing on the gateway's port and logged it (two lines).
    wait_for_log(container, "socat[")
    assert "127.0.0.1:4002, 16): Connection refused" in logs(container)
    wait_for_log(container, "Login has completed")
    ib = IB()
    ib.connect("127.0.0.1", port, clientId=21, timeout=5)
    try:
        assert ib.managedAccounts() == ["DU1234567"]
    finally:
        ib.disconnect()
    container.reload()
    assert CANARY not in str(container.attrs)
    assert CANARY not in logs(container)
    # common.sh apply_settings: IBC's config.ini rendered with envsubst, readable by its owner only.
    ini = container.exec_run("stat -c %a /home/ibgateway/ibc/config.ini").output.decode().strip()
    assert ini == "600"


def test_both_password_variables_make_the_container_exit_1(run_standin, secret_file):
    container, _ = run_standin(
        {"TWS_USERID": "trader", "TWS_PASSWORD": "x", "TWS_PASSWORD_FILE": "/run/secrets/tws_password",
         "TRADING_MODE": "paper"},
        volumes={str(secret_file): {"bind": "/run/secrets/tws_password", "mode": "ro"}},
    )
    assert container.wait(timeout=30)["StatusCode"] == 1
    assert "both TWS_PASSWORD and TWS_PASSWORD_FILE are set (but are exclusive)" in logs(container)


@pytest.mark.parametrize("mode", [None, "demo"])
def test_trading_mode_has_no_default(run_standin, mode):
    environment = {"TWS_USERID": "trader", "TWS_PASSWORD": "x"}
    if mode:
        environment["TRADING_MODE"] = mode
    container, _ = run_standin(environment)
    assert container.wait(timeout=30)["StatusCode"] == 1
    assert f".> Invalid TRADING_MODE: {mode or ''}" in logs(container)


def test_docker_stop_ends_with_run_sh_s_status_143_well_within_the_grace_period(run_standin):
    container, _ = run_standin({"TWS_USERID": "trader", "TWS_PASSWORD": "x", "TRADING_MODE": "paper",
                                "STANDIN_LOGIN_DELAY": "0"})
    wait_for_log(container, "Login has completed")
    started = time.monotonic()
    container.stop(timeout=90)
    assert time.monotonic() - started < 10
    assert container.wait(timeout=5)["StatusCode"] == 143
    assert ".> Received SIGINT or SIGTERM. Shutting down IB Gateway." in logs(container)


def test_a_wrong_password_logs_in_again_and_again_in_the_same_container(run_standin):
    # LoginFailedDialogHandler asks for a cold restart; ibcstart.sh starts IBC again: the container never stops.
    container, _ = run_standin({"TWS_USERID": "trader", "TWS_PASSWORD": "wrong", "TRADING_MODE": "paper",
                                "STANDIN_ACCEPT_USERID": "someone-else", "STANDIN_START_DELAY": "0.5",
                                "STANDIN_LOGIN_DELAY": "0.2"})
    deadline = time.monotonic() + 20
    while login_attempts(container) < 3:
        assert time.monotonic() < deadline, logs(container)
        time.sleep(0.2)
    container.reload()
    assert container.status == "running"
    assert "IBC will cold-restart shortly" in logs(container)


def test_a_password_file_s_trailing_cr_reaches_config_ini_but_not_the_login(run_standin, secret_file):
    # file_env reads $(<file): the newline goes, the CR stays and envsubst writes it into config.ini; IBC reads
    # config.ini with java.util.Properties (a CR ends a line) and trims values (DefaultSettings.getString).
    secret_file.chmod(0o600)
    secret_file.write_text(CANARY + "\r\n")
    container, _ = run_standin(
        {"TWS_USERID": "trader", "TWS_PASSWORD_FILE": "/run/secrets/tws_password", "TRADING_MODE": "paper",
         "STANDIN_ACCEPT_PASSWORD_SHA256": hashlib.sha256(CANARY.encode()).hexdigest(),
         "STANDIN_LOGIN_DELAY": "0"},
        volumes={str(secret_file): {"bind": "/run/secrets/tws_password", "mode": "ro"}},
    )
    wait_for_log(container, "IBC: Login has completed")
    rendered = container.exec_run(["grep", "-c", "\r$", "/home/ibgateway/ibc/config.ini"]).output.decode()
    assert rendered.strip() == "1"


def test_time_zone_reaches_jts_ini_only_while_jts_ini_is_new(run_standin, tmp_path):
    settings = tmp_path / "settings"
    settings.mkdir()
    os.chown(settings, 1000, 1000)
    volumes = {str(settings): {"bind": "/home/ibgateway/tws_settings", "mode": "rw"}}
    base = {"TWS_USERID": "trader", "TWS_PASSWORD": "x", "TRADING_MODE": "paper", "STANDIN_LOGIN_DELAY": "0",
            "TWS_SETTINGS_PATH": "/home/ibgateway/tws_settings"}
    first, _ = run_standin({**base, "TIME_ZONE": "Europe/London"}, volumes=volumes)
    wait_for_log(first, "Login has completed")
    first.stop(timeout=30)
    assert "TimeZone=Europe/London" in (settings / "jts.ini").read_text()
    second, _ = run_standin({**base, "TIME_ZONE": "Asia/Tokyo"}, volumes=volumes)
    wait_for_log(second, "File jts.ini already exists, not setting timezone")
    assert "TimeZone=Europe/London" in (settings / "jts.ini").read_text()
