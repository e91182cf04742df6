"""Role docker_engine on the lab VM (Debian 13, source debian): converge, idempotence, verify."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.lab import recap_changed

pytestmark = [pytest.mark.integration, pytest.mark.configured_vm]


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
    assert "RUNNING HANDLER [ibgw_ops.gateway.docker_engine : Restart docker]" in result.stdout
    assert json.loads(lab.ssh("cat /etc/docker/daemon.json"))["log-opts"]["max-file"] == "7"
    assert lab.ssh("systemctl show -p ExecMainStartTimestampMonotonic --value docker").strip() != started


def test_a_bad_source_is_refused_before_any_change(converged):
    lab, _ = converged
    before = lab.ssh("sha256sum /etc/docker/daemon.json")
    result = lab.playbook("site.yml", "--tags", "docker_engine", "-e", "docker_engine_source=snap")
    assert result.returncode != 0
    assert "docker_engine_source" in result.stdout and "debian" in result.stdout
    assert lab.ssh("sha256sum /etc/docker/daemon.json") == before


def task_results(output: str) -> dict[str, dict]:
    """Results by task name from a -vvv run (the JSON after ``host => `` / ``FAILED! => ``)."""
    results: dict[str, dict] = {}
    for block in output.split("\nTASK [")[1:]:
        name = block.split("]", 1)[0].split(" : ", 1)[-1]
        start = max(block.find("changed: ["), block.find("fatal: ["), block.find("ok: ["))
        brace = block.find("=> {", start)
        if start < 0 or brace < 0:
            continue
        end = block.find("\n}", brace)
        results[name] = json.loads(block[brace + 3:end + 2])
    return results


def test_the_docker_source_adds_dockers_repository_and_its_packages(converged):
    """Docker's repository is unreachable here: check mode shows the repository file and the package lists."""
    lab, _ = converged
    lab.ssh("apt-get install -y -q python3-debian >/dev/null")
    # Results carry the module's arguments only when asked (ansible-core 2.20+; always on 2.19).
    result = lab.playbook("site.yml", "--tags", "docker_engine", "--check", "-vvv",
                          "-e", "ansible_inject_invocation=true", "-e", "docker_engine_source=docker",
                          "-e", "docker_engine_repository_key_url=/usr/share/keyrings/debian-archive-keyring.gpg")
    results = task_results(result.stdout)
    removed = results["Remove distro packages that conflict with Docker's"]["invocation"]["module_args"]["name"]
    assert {"docker.io", "docker-compose", "containerd", "runc"} <= set(removed)
    repo = dict(line.split(": ", 1) for line in results["Add Docker's apt repository"]["repo"].splitlines())
    assert repo == {"Types": "deb", "URIs": "https://download.docker.com/linux/debian", "Suites": "trixie",
                    "Components": "stable", "Architectures": lab.ssh("dpkg --print-architecture").strip(),
                    "X-Repolib-Name": "docker", "Signed-By": "/usr/share/keyrings/debian-archive-keyring.gpg"}
    install = results["Install Docker Engine and the Compose plugin"]
    assert install["invocation"]["module_args"]["name"] == [
        "docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin", "docker-compose-plugin"]
    assert lab.ssh("dpkg-query -W -f '${Status}' docker.io") == "install ok installed"
    assert "docker.sources" not in lab.ssh("ls /etc/apt/sources.list.d/")
