"""Real-gateway fidelity on a roles VM: for each behaviour the stand-in plays from IBC's and the image's sources
(docs/lab.md), the product ends in the exit code src/ibgw_ops/errors.py gives its class, quotes IBC's own lines, and
leaves the gateway in a known state. Through the CLI and through plain ansible-playbook.

| scenario (upstream behaviour)                                       | expected                                   |
|---------------------------------------------------------------------|--------------------------------------------|
| wrong password (LoginFailedDialogHandler: cold restart, same pw)    | exit 8 within 15 s, one login attempt, down |
| too many failed logins (TooManyFailedLoginAttemptsDialogHandler)    | exit 8, "may be locked", IBKR's wait       |
| session held elsewhere: scenarios 1, 2, 4 (ExistingSession...)      | exit 6 from up, start.yml, live-signin     |
| the same from paper-up and paper-run                                | exit 6, paper down                         |
| live 2FA never approved (LoginManager, one push)                    | exit 7, exactly one 2FA prompt, live down  |
| soft restart (RestartTask: at the next minute)                      | ready only after the new session's login   |
| API hung: handshake, no nextValidId (upstream issue #336)           | exit 4 naming the state, live left running |
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime

import pytest

from ibgw_ops.errors import ExitCode
from tests.support.lab import Lab

pytestmark = pytest.mark.integration

# A Gateway's Java start takes seconds before IBC's login dialog (and its next attempt after a cold restart).
JAVA_START = "3"
# One deploy for every scenario. Only "paper" is in paper mode (paper-up and paper-run start every paper instance);
# the others are live, where IBC plays the same dialogs before the second factor.
SCENARIOS = {
    "badpw": ("live", "primary", {"STANDIN_ACCEPT_USERID": "someone-else", "STANDIN_START_DELAY": JAVA_START}),
    "locked": ("live", "primary", {"STANDIN_LOCKED_SECONDS": "287"}),
    "scen1": ("live", "manual", {"STANDIN_OTHER_SESSION": "yes"}),
    "scen2": ("live", "secondary", {"STANDIN_OTHER_SESSION": "yes"}),
    "scen4": ("live", "primaryoverride", {"STANDIN_OTHER_SESSION": "primary", "STANDIN_RECONNECT_DELAY": "1"}),
    "nopush": ("live", "primary", {"STANDIN_NEVER_LOGIN": "yes"}),
    "hung": ("live", "primary", {"STANDIN_API_HANG": "yes"}),
    "signedin": ("live", "primary", {}),
    "paper": ("paper", "primaryoverride", {"STANDIN_OTHER_SESSION": "primary", "STANDIN_RECONNECT_DELAY": "1"}),
}


def instances(scenarios: dict[str, tuple[str, str, dict[str, str]]]) -> list[dict[str, object]]:
    return [{"name": name, "mode": mode, "api_port": 4100 + index, "vnc_port": 5950 + index,
             "existing_session_detected_action": action, "extra_env": extra}
            for index, (name, (mode, action, extra)) in enumerate(scenarios.items())]


def credentials(names: Iterable[str]) -> dict[str, dict[str, str]]:
    """Rehearsal credentials the stand-in accepts (unless a scenario says otherwise)."""
    return {name: {"user_id": "rehearsal", "password": "rehearsal-only"} for name in names}


@pytest.fixture(scope="module")
def fidelity(converged_lab: Lab) -> Iterator[Lab]:
    """The roles VM with one gateway instance per scenario, none started."""
    converged_lab.use_settings({"ib_gateway_instances": instances(SCENARIOS),
                                "ib_gateway_credentials": credentials(SCENARIOS)})
    yield converged_lab
    converged_lab.cli("down", "all", check=False)
    # Back to the lab's own settings without a deploy of its own: the scenarios' gateways go, and the next module
    # that needs the roles VM converges it (its configuration differs from the last converge).
    extra = " ".join(name for name in SCENARIOS if name != "paper")
    converged_lab.ssh(f"for name in {extra}; do docker rm -f ibgw-$name; rm -rf /opt/ibgw/$name; done >/dev/null")
    converged_lab.host_settings(None)


def log(lab: Lab, instance: str) -> list[tuple[datetime, str]]:
    """The container's log with Docker's receive times (UTC)."""
    lines = []
    for line in lab.ssh(f"docker logs --timestamps ibgw-{instance} 2>&1").splitlines():
        stamp, _, text = line.partition(" ")
        lines.append((datetime.fromisoformat(stamp[:26] + "+00:00"), text))
    return lines


def count(lab: Lab, instance: str, text: str) -> int:
    return sum(text in line for _, line in log(lab, instance))


def test_a_wrong_password_exits_8_within_15_s_after_one_login_attempt(fidelity):
    result = fidelity.cli("up", "badpw", "--timeout", "120", check=False)
    ended = datetime.now().astimezone()
    assert result.returncode == ExitCode.LOGIN_FAILED, result.stderr
    assert "LOGIN FAILED: gateway badpw" in result.stderr and "IBC: Login failed" in result.stderr
    assert "socat[" not in result.stderr, "the message quotes IBC's lines, not socat's"
    assert "IBGW_ALERT login_failed badpw" in result.stderr
    failed = next(stamp for stamp, line in log(fidelity, "badpw") if "IBC: Login failed" in line)
    assert (ended - failed).total_seconds() < 15
    assert count(fidelity, "badpw", "IBC: Login attempt: ") == 1
    assert fidelity.container_state("badpw") == "exited"


def test_too_many_failed_logins_exit_8_and_say_the_account_may_be_locked(fidelity):
    result = fidelity.cli("up", "locked", "--timeout", "60", check=False)
    assert result.returncode == ExitCode.LOGIN_FAILED, result.stderr
    assert "may be locked" in result.stderr and "4 minutes & 47 seconds" in result.stderr
    assert fidelity.container_state("locked") == "exited"


@pytest.mark.parametrize(("instance", "scenario"), [("scen1", "scenario 1"), ("scen2", "scenario 2"),
                                                    ("scen4", "scenario 4")])
def test_a_session_held_elsewhere_exits_6_from_up(fidelity, instance, scenario):
    result = fidelity.cli("up", instance, "--timeout", "60", check=False)
    assert result.returncode == ExitCode.SESSION_TAKEN, result.stderr
    assert f"({scenario})" in result.stderr and f"IBGW_ALERT session_taken {instance}" in result.stderr
    assert fidelity.container_state(instance) == "exited"


def test_a_session_held_elsewhere_fails_the_start_playbook_with_session_taken(fidelity):
    result = fidelity.playbook("start.yml", "-e", "ib_gateway_target=scen2")
    assert result.returncode != 0
    assert "SESSION TAKEN: gateway scen2" in result.stdout, result.stdout[-2000:]
    assert fidelity.container_state("scen2") == "exited"


def test_live_signin_against_a_primary_session_elsewhere_exits_6(fidelity):
    result = fidelity.cli("live-signin", "scen4", "--timeout", "60", check=False)
    assert result.returncode == ExitCode.SESSION_TAKEN, result.stderr
    assert "(scenario 4)" in result.stderr
    assert fidelity.container_state("scen4") == "exited"


def test_live_2fa_never_approved_exits_7_after_exactly_one_push(fidelity):
    result = fidelity.cli("live-signin", "nopush", "--timeout", "10", check=False)
    assert result.returncode == ExitCode.TWOFA_TIMEOUT, result.stderr
    assert count(fidelity, "nopush", "IBC: Second Factor Authentication initiated") == 1
    assert fidelity.container_state("nopush") == "exited", "no more pushes after the deadline"


def test_a_hung_live_api_exits_4_naming_the_probe_s_verdict_and_is_left_running(fidelity):
    result = fidelity.cli("up", "hung", "--timeout", "8", check=False)
    assert result.returncode == ExitCode.NOT_READY, result.stderr
    assert "NOT READY: gateway hung" in result.stderr and "no nextValidId" in result.stderr
    assert fidelity.container_state("hung") == "running", "never restart live by itself (a new login needs 2FA)"
    fidelity.cli("down", "hung")


def test_a_soft_restart_is_ready_only_after_the_new_session_logged_in(fidelity):
    fidelity.cli("up", "signedin")
    fidelity.cli("restart", "signedin")
    returned = datetime.now().astimezone()
    lines = log(fidelity, "signedin")
    scheduled = next(stamp for stamp, line in lines if "IBC: Setting auto-restart time to" in line)
    logins = [stamp for stamp, line in lines if re.search(r"IBC: Login has completed$", line)]
    assert len(logins) == 2 and logins[0] < scheduled < logins[1] < returned, lines
    assert fidelity.status_rows("signedin")["signedin"]["probe"] == "ready"


@pytest.mark.parametrize("verb", [["paper-up"], ["paper-run", "--timeout", "60", "--", "true"]])
def test_paper_up_and_paper_run_exit_6_when_the_session_is_held_elsewhere(fidelity, verb):
    result = fidelity.cli(*verb, check=False)
    assert result.returncode == ExitCode.SESSION_TAKEN, result.stderr
    assert "(scenario 4)" in result.stderr and "IBGW_ALERT session_taken paper" in result.stderr
    assert fidelity.container_state("paper") == "exited"
