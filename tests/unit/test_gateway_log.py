"""gateway_log against the container log the real image writes: IBC's lines among socat's, run.sh's and
ibcstart.sh's (phrases from IbcAlpha/IBC 3.24.1 and gnzsnz/ib-gateway-docker v10.45.1j-stable)."""

from __future__ import annotations

import os
import sys
import time

import pytest

from ibgw_ops.on_host import gateway_log


def ibc(text: str, second: int = 0) -> str:
    return f"2024-02-08 01:58:{second:02d}:123 IBC: {text}"


SOCAT = "2024/02/08 01:58:53 socat[24204] E connect(5, AF=2 127.0.0.1:4002, 16): Connection refused"
NOISE = [".> Starting IBC/IB gateway", SOCAT, "IBC returned exit status 0", "IBC will cold-restart shortly", SOCAT]
WRONG_PASSWORD = [ibc("Login attempt: 1"), *NOISE, ibc("Login failed"), ibc("Cold restart in progress"),
                  ibc("Login has not completed: exiting immediately"), *NOISE]


@pytest.mark.parametrize(("lines", "reason"), [
    (WRONG_PASSWORD, gateway_log.LOGIN_FAILED),
    ([ibc("Login attempt: 3"), ibc("Too many failed login attempts. Please wait 53 seconds before attempting to "
                                   "re-login again.")], gateway_log.LOGIN_FAILED),
    ([ibc("User must choose whether to continue with this session (scenario 1)")], gateway_log.SESSION_TAKEN),
    ([ibc("ExistingSessionDetectedAction has an invalid value: bogus: assuming 'secondary'"),
      ibc("End this session and let the other session proceed (scenario 2)")], gateway_log.SESSION_TAKEN),
    ([ibc("Don't know the type of the other session, so continue this one (scenario 3)")], None),
    ([ibc("Other session must be primary or primary override, so end this session and let the other one proceed "
          "(scenario 4)")], gateway_log.SESSION_TAKEN),
    ([ibc("Continue this session and let the other session exit (scenario 5)"), ibc("Login has completed")], None),
    ([ibc("Login has completed"), *NOISE,
      ibc("Other session may be primary, so end this session and let the other one proceed (scenario 6)")],
     gateway_log.SESSION_TAKEN),
    ([ibc("Second Factor Authentication initiated"), *NOISE], gateway_log.TWOFA_PENDING),
    ([*WRONG_PASSWORD, ibc("Login attempt: 1"), ibc("Login has completed")], None),
    # StopTask's line is not a login; phrases outside IBC's lines (the lab's old ones, a log viewer's) do not tell.
    ([ibc("Login has completed: exiting via [File, Close] menu")], None),
    (["IBC: Login failed: Unrecognized Username or Password", "Login failed", SOCAT], None),
    ([], None),
])
def test_only_ibc_s_own_lines_tell_and_the_newest_decides(lines, reason):
    assert gateway_log.classify(lines) == reason


def test_docker_s_timestamps_before_ibc_s_do_not_hide_the_line():
    assert gateway_log.classify([f"2024-02-08T01:58:53.123456789Z {ibc('Login failed')}"]) == gateway_log.LOGIN_FAILED


@pytest.mark.parametrize("wait", ["53 seconds", "4 minutes & 47 seconds", "1 minute & 1 second"])
def test_too_many_failed_attempts_says_the_account_may_be_locked_and_how_long_to_wait(wait):
    watch = gateway_log.Watch()
    watch.feed([ibc(f"Too many failed login attempts. Please wait {wait} before attempting to re-login again.")])
    assert (watch.reason, watch.wait) == (gateway_log.LOGIN_FAILED, wait)
    assert "may be locked" in watch.explain() and f"wait {wait} before" in watch.explain()


def test_a_plain_login_failure_quotes_ibc_and_says_no_more():
    watch = gateway_log.Watch()
    watch.feed(WRONG_PASSWORD)
    assert (watch.wait, watch.explain(), watch.logged_in) == ("", "IBC: Login failed", False)


def test_a_login_after_the_watch_began_is_remembered_whatever_follows():
    watch = gateway_log.Watch()
    watch.feed([ibc("Setting auto-restart time to 01:59 AM"), ibc("Login has completed"),
                ibc("End this session and let the other session proceed (scenario 2)")])
    assert (watch.logged_in, watch.reason) == (True, gateway_log.SESSION_TAKEN)


def test_the_quote_is_ibc_s_last_lines_without_the_noise():
    watch = gateway_log.Watch()
    watch.feed([ibc(f"line {n}") for n in range(20)] + [SOCAT] * 200)
    assert list(watch.quoted) == [ibc(f"line {n}") for n in range(20 - gateway_log.QUOTED, 20)]


def test_the_container_s_log_is_read_once_for_the_reason_and_the_quote():
    calls = []

    def run(argv: list[str]) -> tuple[int, str, str]:
        calls.append(argv)
        return 0, "\n".join(WRONG_PASSWORD + [SOCAT] * 500) + "\n", ""

    reason, tail = gateway_log.read_container(run, "ibgw-live")
    assert (reason, tail[-3:]) == (gateway_log.LOGIN_FAILED, WRONG_PASSWORD[-8:-5])
    assert calls == [["docker", "logs", "--tail", str(gateway_log.TAIL), "ibgw-live"]]
    assert gateway_log.read_container(lambda argv: (1, "", "No such container"), "x") == (None, [])


def test_the_follower_hands_over_complete_lines_as_they_come_without_blocking():
    script = "import sys, time; print('one'); sys.stdout.write('tw'); sys.stdout.flush(); time.sleep(0.5); print('o')"
    with gateway_log.Follower([sys.executable, "-c", script]) as follower:
        begun = time.monotonic()
        lines: list[str] = []
        while time.monotonic() - begun < 0.3:
            lines += follower.read()
            time.sleep(0.02)
        assert lines == ["one"]
        while "two" not in lines and time.monotonic() - begun < 5:
            lines += follower.read()
            time.sleep(0.02)
        assert lines == ["one", "two"]


def test_the_follower_ends_a_command_that_never_ends():
    begun = time.monotonic()
    gateway_log.Follower([sys.executable, "-c", "import time; time.sleep(60)"]).close()
    assert time.monotonic() - begun < 5


@pytest.mark.parametrize(("since", "expected"), [(1707357533.5, "--since 1707357533.500000 "), (None, "")])
def test_following_a_container_asks_docker_from_the_start_or_for_the_whole_log(since, expected, tmp_path,
                                                                                  monkeypatch):
    docker = tmp_path / "docker"
    docker.write_text('#!/bin/sh\necho "$*"\n')
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    with gateway_log.follow("ibgw-live", since) as follower:
        begun = time.monotonic()
        lines: list[str] = []
        while not lines and time.monotonic() - begun < 5:
            lines = follower.read()
            time.sleep(0.02)
    assert lines == [f"logs --follow {expected}ibgw-live"]
