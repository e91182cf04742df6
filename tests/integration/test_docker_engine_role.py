"""Role docker_engine on the lab VM (Debian 13, source debian): converge, idempotence, verify."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.integration


def recap_changed(output: str) -> int:
    match = re.search(r"changed=(\d+)", output.split("PLAY RECAP", 1)[-1])
    assert match, output
    return int(match.group(1))


@pytest.fixture(scope="module")
def converged(converged_lab):
    first = converged_lab.playbook("site.yml", "--tags", "docker_engine")
    assert first.returncode == 0, first.stdout + first.stderr
    return converged_lab, first


def test_converge_installs_docker_and_compose_v2(converged):
    lab, first = converged
    assert recap_changed(first.stdout) > 0
    assert lab.ssh("systemctl is-active docker; systemctl is-enabled docker").split() == ["active", "enabled"]
    assert re.match(r"Docker Compose version v?2\.", lab.ssh("docker compose version"))


def test_second_converge_changes_nothing(converged):
    lab, _ = converged
    second = lab.playbook("site.yml", "--tags", "docker_engine")
    assert second.returncode == 0, second.stdout + second.stderr
    assert recap_changed(second.stdout) == 0


def test_daemon_config_has_log_rotation_and_live_restore(converged):
    lab, _ = converged
    config = json.loads(lab.ssh("cat /etc/docker/daemon.json"))
    assert config["live-restore"] is True
    assert config["log-driver"] == "json-file" and config["log-opts"]["max-size"]
    info = json.loads(lab.ssh("docker info --format '{{json .}}'"))
    assert info["LiveRestoreEnabled"] is True
    assert info["LoggingDriver"] == "json-file"


def test_a_changed_daemon_config_restarts_docker_through_the_handler(converged):
    lab, _ = converged
    started = lab.ssh("systemctl show -p ExecMainStartTimestampMonotonic --value docker").strip()
    extra = json.dumps({"docker_engine_daemon_config": {"log-opts": {"max-file": "7"}}})
    result = lab.playbook("site.yml", "--tags", "docker_engine", "-e", extra)
    assert result.returncode == 0, result.stdout
    assert "RUNNING HANDLER [docker_engine : Restart docker]" in result.stdout
    assert json.loads(lab.ssh("cat /etc/docker/daemon.json"))["log-opts"]["max-file"] == "7"
    assert lab.ssh("systemctl show -p ExecMainStartTimestampMonotonic --value docker").strip() != started


def test_a_bad_source_is_refused_before_any_change(converged):
    lab, _ = converged
    before = lab.ssh("sha256sum /etc/docker/daemon.json")
    result = lab.playbook("site.yml", "--tags", "docker_engine", "-e", "docker_engine_source=snap")
    assert result.returncode != 0
    assert "docker_engine_source" in result.stdout and "debian" in result.stdout
    assert lab.ssh("sha256sum /etc/docker/daemon.json") == before
