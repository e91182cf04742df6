"""The stand-in image on the real engine: the image's user, ports, secrets and shutdown contract."""

from __future__ import annotations

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


def test_runs_as_uid_1000_and_serves_ib_async_after_login(run_standin, secret_file):
    container, port = run_standin(
        {"TWS_USERID": "trader", "TWS_PASSWORD_FILE": "/run/secrets/tws_password", "STANDIN_LOGIN_DELAY": "2"},
        volumes={str(secret_file): {"bind": "/run/secrets/tws_password", "mode": "ro"}},
    )
    wait_for_log(container, "accepting")
    assert container.exec_run("id -u").output.decode().strip() == "1000"
    early = IB()
    with pytest.raises((ConnectionError, TimeoutError, OSError)):
        early.connect("127.0.0.1", port, clientId=21, timeout=1)
    assert early.managedAccounts() == []
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


def test_both_password_variables_make_the_container_exit_1(run_standin, secret_file):
    container, _ = run_standin(
        {"TWS_USERID": "trader", "TWS_PASSWORD": "x", "TWS_PASSWORD_FILE": "/run/secrets/tws_password"},
        volumes={str(secret_file): {"bind": "/run/secrets/tws_password", "mode": "ro"}},
    )
    assert container.wait(timeout=30)["StatusCode"] == 1
    assert "both set" in logs(container)


def test_docker_stop_is_a_tidy_exit_0_well_within_the_grace_period(run_standin):
    container, _ = run_standin({"TWS_USERID": "trader", "TWS_PASSWORD": "x", "STANDIN_LOGIN_DELAY": "0"})
    wait_for_log(container, "Login has completed")
    started = time.monotonic()
    container.stop(timeout=90)
    assert time.monotonic() - started < 10
    assert container.wait(timeout=5)["StatusCode"] == 0
    assert "tidily" in logs(container)
