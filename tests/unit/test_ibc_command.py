"""The IBC command-server client against the stand-in's command server, through a docker whose exec runs the
command on this machine (the container's loopback is this machine's here), as the stop script runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ibgw_ops.on_host import ibc_command
from tests.support.layout import ON_HOST

PROGRAM = ON_HOST / "ibc_command.py"


@pytest.fixture
def docker_here(tmp_path: Path) -> dict[str, str]:
    """An environment whose docker runs ``docker exec CONTAINER ARGV...`` as ARGV on this machine."""
    script = tmp_path / "docker"
    script.write_text('#!/bin/sh\n[ "$1" = exec ] || exit 1\nshift 2\nexec "$@"\n')
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}


def program(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(PROGRAM), *args], env=env, capture_output=True, text=True,
                          check=False, timeout=30)


def test_stop_as_the_stop_script_sends_it_makes_ibc_shut_down(standin, docker_here):
    gateway = standin()
    gateway.logged_in()
    done = program(docker_here, "ibgw-paper", "STOP", str(gateway.command_port))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "OK Shutting down: STOP command"
    gateway.wait_for("Login has completed: exiting via [File, Close] menu")
    assert gateway.exit_code() == 0


def test_restart_is_taken_and_the_answer_returned(standin, docker_here, monkeypatch):
    gateway = standin()
    gateway.logged_in()
    monkeypatch.setenv("PATH", docker_here["PATH"])
    took, said = ibc_command.send("ibgw-paper", "RESTART", gateway.command_port, ibc_command._run)
    assert took and said == "OK RESTART in progress"


def test_a_gateway_without_a_command_server_is_reported_not_taken(standin, docker_here):
    gateway = standin(command_server=False)
    gateway.logged_in()
    done = program(docker_here, "ibgw-paper", "STOP", "1")
    assert done.returncode == 1 and done.stdout.strip()
    assert gateway.proc.poll() is None


@pytest.mark.parametrize(("answer", "took"), [
    ((0, "OK Shutting down: STOP command\n", ""), True),
    ((0, "ERROR Command invalid\n", ""), False),
    ((1, "", "Error response from daemon: No such container: ibgw-paper\n"), False),
])
def test_only_an_ok_answer_counts_as_taken(answer, took):
    sent: list[list[str]] = []

    def run(argv: list[str]) -> tuple[int, str, str]:
        sent.append(argv)
        return answer

    result = ibc_command.send("ibgw-paper", "STOP", 7462, run)
    assert result[0] is took and result[1] == (answer[1] or answer[2]).strip()
    assert sent[0][:5] == ["docker", "exec", "ibgw-paper", "bash", "-c"] and "/dev/tcp/127.0.0.1/7462" in sent[0][5]


def test_unknown_commands_and_bad_arguments_are_refused_before_anything_is_sent(docker_here):
    with pytest.raises(ValueError, match="command: 'PAUSE' \\(allowed: STOP, RESTART\\)"):
        ibc_command.command_argv("ibgw-paper", "PAUSE", 7462)
    for args in (("ibgw-paper", "PAUSE", "7462"), ("ibgw-paper", "STOP", "x"), ("ibgw-paper",)):
        done = program(docker_here, *args)
        assert done.returncode == 2 and "usage: ibc-command CONTAINER STOP|RESTART PORT" in done.stderr
