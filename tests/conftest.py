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
from pathlib import Path

import docker
import pytest

from tests.lab import LAB_PREFIX, TEST_LAB, Lab, fresh_lab

CANARY = "canary-Pw-7f3e91"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Standin:
    """The stand-in gateway script running as a local process, with its log lines collected."""

    def __init__(self, env: dict[str, str | None], tmp: Path) -> None:
        tmp.mkdir()
        self.port = free_port()
        self.command_port = free_port()
        self.settings = tmp / "Jts"
        template = tmp / "config.ini.tmpl"
        template.write_text(f"CommandServerPort={self.command_port}\n")
        full_env = {
            "PATH": os.environ["PATH"], "TWS_USERID": "trader", "TWS_PASSWORD": CANARY,
            "STANDIN_LOGIN_DELAY": "0", "STANDIN_LISTEN_HOST": "127.0.0.1", "STANDIN_API_PORT": str(self.port),
            "STANDIN_IBC_TEMPLATE": str(template), "TWS_SETTINGS_PATH": str(self.settings), **env,
        }
        full_env = {k: v for k, v in full_env.items() if v is not None}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ibgw_ops.lab.standin.gateway"], env=full_env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

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

    def exit_code(self, timeout: float = 10.0) -> int:
        code = self.proc.wait(timeout=timeout)
        while not self._queue.empty():
            self.lines.append(self._queue.get())
        return code

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self) -> None:
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

    def start(**env: str | None) -> Standin:
        gateway = Standin(env, tmp_path / f"gw{len(started)}")
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
