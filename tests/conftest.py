"""Fixtures shared by the unit tests, the integration tests and the fault matrix (the lab VMs)."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import docker
import pytest

from tests.support.lab import LAB_PREFIX, TEST_LAB, Lab, fresh_lab
from tests.support.webhook import Receiver

CANARY = "canary-Pw-7f3e91"


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 5
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Standin:
    """IBC and the gateway (the stand-in's gateway.py) as a local process behind a real socat, log lines collected.

    As in the image: config.ini is the stand-in's template rendered by envsubst from the environment (with the API
    and command server ports of this test appended: IBC reads the last of a repeated key), and socat forwards the
    published port (``port``) to the gateway's API port, as run_socat.sh does.
    """

    def __init__(self, env: dict[str, str | None], tmp: Path, *, command_server: bool = True) -> None:
        tmp.mkdir()
        self.port = free_port()
        self.api_port = free_port()
        self.command_port = free_port() if command_server else 0
        self.settings = tmp / "Jts"
        self.settings.mkdir()
        full_env = {
            "PATH": os.environ["PATH"], "TWS_USERID": "trader", "TWS_PASSWORD": CANARY, "TRADING_MODE": "paper",
            "STANDIN_START_DELAY": "0", "STANDIN_LOGIN_DELAY": "0", **env,
        }
        full_env = {k: v for k, v in full_env.items() if v is not None}
        template = Path(str(resources.files("ibgw_ops.lab.standin") / "config.ini.tmpl")).read_text()
        rendered = subprocess.run(["envsubst"], input=template, env=full_env, capture_output=True, text=True,
                                  check=True).stdout
        self.ini = tmp / "config.ini"
        self.ini.write_text(rendered + f"OverrideTwsApiPort={self.api_port}\nCommandServerPort={self.command_port}\n"
                            "BindAddress=127.0.0.1\n")
        self.socat = subprocess.Popen(["socat", f"TCP-LISTEN:{self.port},bind=127.0.0.1,fork,reuseaddr",
                                       f"TCP:127.0.0.1:{self.api_port}"], stderr=subprocess.DEVNULL)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ibgw_ops.lab.standin.gateway", str(self.ini),
             f"--jts-config-dir={self.settings}", "--session-id=test"],
            env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        _wait_listening(self.port)

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 10.0) -> str:
        """Block until a log line containing ``text`` appears."""
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if text in line:
                return line
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.05)
            except queue.Empty:
                continue
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"no log line with {text!r}; log so far: {self.lines}")

    def logged_in(self) -> str:
        """Block until IBC's "Login has completed" and the gateway's API port listens behind socat.

        The two are separate events, as in the image: a client that connects between them is dropped by socat.
        """
        line = self.wait_for("Login has completed")
        _wait_listening(self.api_port)
        return line

    def exit_code(self, timeout: float = 10.0) -> int:
        code = self.proc.wait(timeout=timeout)
        while not self._queue.empty():
            self.lines.append(self._queue.get())
        return code

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self) -> None:
        self.socat.terminate()
        self.socat.wait(timeout=5)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[object]:
    """Factory: start a stand-in process with extra environment; all are stopped after the test."""
    started: list[Standin] = []

    def start(*, command_server: bool = True, **env: str | None) -> Standin:
        gateway = Standin(env, tmp_path / f"gw{len(started)}", command_server=command_server)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


# The lab VMs shared by tests/integration and tests/faults: each is created once per session.
@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    return docker.from_env()


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A fresh VM as a cloud provider hands it over: nothing installed by the roles."""
    yield from fresh_lab(TEST_LAB, tmp_path_factory)


@pytest.fixture(scope="session")
def converged_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A VM of its own for tests that apply the roles (shared by the role tests)."""
    yield from fresh_lab(f"{LAB_PREFIX}-roles", tmp_path_factory)


@pytest.fixture(scope="session")
def spare_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A VM for modules that bring settings of their own (host firewall, Secret Manager); each undoes them."""
    yield from fresh_lab(f"{LAB_PREFIX}-spare", tmp_path_factory)


# The configuration each roles VM had right after its last converge with the lab's defaults.
_converged: dict[str, str] = {}


@pytest.fixture(scope="module")
def receiver(deployed: Lab) -> Iterator[Receiver]:
    """A webhook receiver where the roles VM reaches this machine: the lab network's gateway address."""
    server = Receiver(host=deployed.controller)
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def deployed(converged_lab: Lab) -> Lab:
    """The roles VM with site.yml applied with the lab's defaults, and every gateway stopped.

    site.yml runs again only when the configuration differs from the last converge (a module left settings
    behind): a converge costs about 20 s, the comparison one SSH command.
    """
    if _converged.get(converged_lab.name) != converged_lab.configuration():
        converged_lab.converge()
        _converged[converged_lab.name] = converged_lab.configuration()
    stopped = converged_lab.playbook("stop.yml")
    assert stopped.returncode == 0, stopped.stdout
    return converged_lab
