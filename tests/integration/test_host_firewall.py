"""Role host_firewall on the spare lab VM: the gateway API ports answer only the allowed sources, across Docker
restarts and reboots; a Docker that leaves iptables alone is refused.

Two clients on the lab's network: this test process (the network's gateway address, the source that the inventory
'lab up' writes allows, as provision allows the Cloud Run egress) and a container with another address (not
allowed). Paper is published on all of the VM's addresses.
"""

from __future__ import annotations

import io
import json
import shlex
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from docker.models.containers import Container

from ibgw_ops.lab import images
from ibgw_ops.lab.engine import LABEL
from ibgw_ops.on_host import tws_probe
from tests.support.lab import Lab, recap_changed, wait_for

pytestmark = pytest.mark.integration

CHAIN = "IBGW-API"
UNIT = "ibgw-api-firewall.service"
API_PORT = 4002
# A port published by another container on the VM: the firewall must leave it alone.
OTHER_PORT = 8080
# How long a client waits for a TCP answer before calling the port filtered.
DROP_TIMEOUT = 2.0
PROBE = ("import sys; sys.path.insert(0, '/probe'); import tws_probe; "
         "print(tws_probe.probe(sys.argv[1], int(sys.argv[2]), timeout=float(sys.argv[3])).state)")


@dataclass
class Firewall:
    lab: Lab
    client: Container
    allowed: str

    @property
    def vm(self) -> str:
        """The VM's address now (a reboot may change it; 'lab up' rewrites the inventory)."""
        return self.lab.host_vars()["ansible_host"]

    def from_host(self, port: int = API_PORT) -> str:
        """The probe's verdict from the allowed source."""
        return tws_probe.probe(self.vm, port, timeout=DROP_TIMEOUT).state

    def from_client(self, port: int = API_PORT) -> str:
        """The probe's verdict from the container, a source that is not allowed."""
        code, output = self.client.exec_run(["python3", "-c", PROBE, self.vm, str(port), str(DROP_TIMEOUT)])
        assert code == 0, output
        return str(output.decode().strip())


def probe_archive() -> bytes:
    """The stdlib-only probe as /probe/tws_probe.py, for the client container."""
    source = Path(tws_probe.__file__).read_bytes()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("probe/tws_probe.py")
        info.size, info.mode = len(source), 0o644
        archive.addfile(info, io.BytesIO(source))
    return buffer.getvalue()


def start_paper(lab: Lab) -> None:
    result = lab.playbook("start.yml", "-e", "ib_gateway_target=paper")
    assert result.returncode == 0, result.stdout


def rules(lab: Lab) -> tuple[list[str], list[str]]:
    """DOCKER-USER's rules and the role's chain, as iptables lists them."""
    listing = lab.ssh(f"iptables -S DOCKER-USER 2>/dev/null; echo ==; iptables -S {CHAIN} 2>/dev/null || true")
    user, chain = listing.split("==\n")
    return user.splitlines()[1:], chain.splitlines()[1:]


def assert_rules_in_place(lab: Lab, allowed: list[str]) -> None:
    user, chain = rules(lab)
    assert user[0] == f"-A DOCKER-USER -j {CHAIN}", user
    assert user.count(f"-A DOCKER-USER -j {CHAIN}") == 1, user
    match = "-p tcp -m conntrack --ctstate DNAT --ctorigdstport {} --ctdir ORIGINAL"
    assert chain == [line for port in (4001, 4002) for line in (
        *(f"-A {CHAIN} -s {source}/32 {match.format(port)} -j RETURN" for source in allowed),
        f"-A {CHAIN} {match.format(port)} -j DROP")], chain


def assert_applied_before_docker(lab: Lab) -> None:
    """The unit finished applying the rules before dockerd was started (both monotonic, same boot)."""
    applied = int(lab.ssh(f"systemctl show -P ExecMainExitTimestampMonotonic {UNIT}"))
    docker = int(lab.ssh("systemctl show -P ExecMainStartTimestampMonotonic docker.service"))
    assert 0 < applied <= docker, (applied, docker)


@pytest.fixture(scope="module")
def firewall(spare_lab: Lab, docker_client) -> Iterator[Firewall]:
    """The spare VM converged with paper on all addresses, this host allowed by the lab's own inventory, paper
    running, and a container serving another published port; its settings and containers are undone afterwards."""
    lab, name = spare_lab, spare_lab.name
    client = None
    settings = lab.inventory / "group_vars" / "ibgw_gateways.yml"
    original = settings.read_text()
    try:
        allowed = lab.controller
        assert lab.host_vars()["host_firewall_api_source_ranges"] == [f"{allowed}/32"]
        settings.write_text(original + yaml.safe_dump({
            "ib_gateway_instances": [{"name": "live", "mode": "live"},
                                     {"name": "paper", "mode": "paper", "bind_address": "0.0.0.0"}],
        }))
        client = docker_client.containers.run(images.BASE.reference, ["sleep", "infinity"], name=f"{name}-client",
                                               network=name, labels={LABEL: name}, detach=True)
        client.put_archive("/", probe_archive())
        lab.converge()
        start_paper(lab)
        standin = lab.host_vars()["ibgw_lab_standin_image"]
        lab.ssh(f"docker run -d --init --name other-service -p {OTHER_PORT}:{OTHER_PORT} --entrypoint python3 "
                f"{standin} -m http.server {OTHER_PORT}")
        yield Firewall(lab, client, allowed)
    finally:
        if client is not None:
            client.remove(force=True)
        lab.ssh("docker rm -f other-service; docker stop ibgw-paper >/dev/null 2>&1; true")
        settings.write_text(original)


def test_a_source_range_of_everything_is_refused_before_any_change(firewall):
    lab = firewall.lab
    before = lab.ssh(f"cat /etc/ibgw-ops/api-firewall.conf; iptables -S {CHAIN}")
    result = lab.playbook("site.yml", "-e", json.dumps({"host_firewall_api_source_ranges": ["10.8.0.0/26",
                                                                                            "0.0.0.0/0"]}))
    assert result.returncode != 0
    assert "host_firewall_api_source_ranges: ['0.0.0.0/0'] would open the gateway API ports" in result.stdout
    assert "Configure the gateway hosts" not in result.stdout
    assert lab.ssh(f"cat /etc/ibgw-ops/api-firewall.conf; iptables -S {CHAIN}") == before
    # Through the CLI, from the inventory (host_vars/, over the range hosts.yml sets): bad input, exit 2.
    lab.host_settings({"host_firewall_api_source_ranges": ["0.0.0.0/0"]})
    try:
        deploy = lab.cli("deploy", check=False)
    finally:
        lab.host_settings(None)
    assert deploy.returncode == 2, deploy.stdout + deploy.stderr
    assert "host_firewall_api_source_ranges" in deploy.stderr


def test_only_the_allowed_source_reaches_the_api_port(firewall):
    lab = firewall.lab
    assert_rules_in_place(lab, [firewall.allowed])
    assert firewall.from_host() == tws_probe.READY
    assert firewall.from_client() == tws_probe.UNREACHABLE
    # The same client reaches SSH and another container's published port: only the API ports are filtered.
    assert firewall.from_client(22) not in (tws_probe.UNREACHABLE, tws_probe.REFUSED)
    assert firewall.from_client(OTHER_PORT) not in (tws_probe.UNREACHABLE, tws_probe.REFUSED)
    again = lab.converge()
    assert recap_changed(again.stdout) == 0
    assert_rules_in_place(lab, [firewall.allowed])


def test_every_docker_start_applies_the_rules_first(firewall):
    lab = firewall.lab
    start_paper(lab)
    lab.ssh(f"iptables -D DOCKER-USER -j {CHAIN} && iptables -F {CHAIN}")
    # Without the rules the client gets through: they, not its network, are what stopped it.
    assert firewall.from_client() == tws_probe.READY
    # A check-mode converge sees the difference and changes nothing.
    checked = lab.playbook("site.yml", "--check", "--tags", "host_firewall")
    assert checked.returncode == 0 and recap_changed(checked.stdout) == 1, checked.stdout
    assert rules(lab)[1] == []
    lab.ssh("systemctl restart docker")
    assert_rules_in_place(lab, [firewall.allowed])
    assert_applied_before_docker(lab)
    # live-restore kept paper running; the allowed source still gets through.
    assert firewall.from_host() == tws_probe.READY
    assert firewall.from_client() == tws_probe.UNREACHABLE
    # The unit cannot be stopped by hand (that would stop Docker, which requires it); a reload re-applies.
    assert "refuse" in lab.cli("lab", "ssh", "--", f"systemctl stop {UNIT}", check=False).stderr
    lab.ssh(f"iptables -F {CHAIN} && systemctl reload {UNIT}")
    assert_rules_in_place(lab, [firewall.allowed])


def reboot(lab: Lab) -> None:
    """Reboot the VM and wait until Docker runs again."""
    lab.reboot()
    wait_for("docker after the reboot", lambda: lab.cli("lab", "ssh", "--", "systemctl is-active docker",
                                                        check=False).stdout.strip() == "active", 60)


def test_after_a_reboot_the_rules_are_in_before_docker_starts(firewall):
    lab = firewall.lab
    lab.ssh("iptables -N IBGW-TEST-MARKER")
    reboot(lab)
    assert "IBGW-TEST-MARKER" not in lab.ssh("iptables -S"), "the reboot kept the kernel's rules"
    assert_rules_in_place(lab, [firewall.allowed])
    assert_applied_before_docker(lab)
    start_paper(lab)
    assert firewall.from_host() == tws_probe.READY
    assert firewall.from_client() == tws_probe.UNREACHABLE


def test_a_docker_that_leaves_iptables_alone_is_refused(firewall):
    """With "iptables": false Docker publishes ports through its userland proxy: the API port's traffic never meets
    DOCKER-USER, so a converge must fail and say why instead of reporting the port protected."""
    lab = firewall.lab
    original = lab.ssh("cat /etc/docker/daemon.json")
    bypassing = json.dumps({**json.loads(original), "iptables": False}, indent=2)
    try:
        lab.ssh(f"printf '%s\\n' {shlex.quote(bypassing)} > /etc/docker/daemon.json")
        reboot(lab)
        start_paper(lab)
        # The danger is real: the rules are in place, yet the client that is not allowed gets through.
        assert rules(lab)[1], "the unit did not apply the rules at boot"
        assert firewall.from_client() == tws_probe.READY
        refused = lab.playbook("site.yml", "--tags", "host_firewall")
        assert refused.returncode != 0, refused.stdout
        assert "Docker does not manage iptables on this host" in refused.stdout, refused.stdout
    finally:
        # Docker started with its iptables management again programs a fresh paper's port (and its jump to
        # DOCKER-USER); the unit re-applies the rules first.
        lab.ssh(f"printf '%s' {shlex.quote(original)} > /etc/docker/daemon.json; "
                "docker stop ibgw-paper >/dev/null 2>&1; systemctl restart docker")
    start_paper(lab)
    assert_rules_in_place(lab, [firewall.allowed])
    assert firewall.from_client() == tws_probe.UNREACHABLE
    assert recap_changed(lab.converge().stdout) == 0


def test_an_empty_list_denies_every_source(firewall):
    lab = firewall.lab
    start_paper(lab)
    result = lab.converge("--tags", "host_firewall", "-e", json.dumps({"host_firewall_api_source_ranges": []}))
    assert recap_changed(result.stdout) > 0
    assert_rules_in_place(lab, [])
    assert firewall.from_host() == tws_probe.UNREACHABLE
    assert firewall.from_client() == tws_probe.UNREACHABLE
    # Clients on the VM itself are not forwarded, so the role's own readiness probe still answers.
    status = lab.playbook("status.yml", "-e", "ib_gateway_target=paper")
    assert status.returncode == 0 and '"probe": "ready"' in status.stdout, status.stdout


def test_runs_at_once_take_turns_and_leave_the_rules_whole(firewall):
    lab = firewall.lab
    script = "/usr/local/sbin/ibgw-api-firewall"
    # Eight applies at once, as from several deploys to one host: each waits for the lock, none sees another's
    # scratch chain, and the rules stay as configured.
    before = rules(lab)
    outcome = lab.ssh(f"for i in 1 2 3 4 5 6 7 8; do ({script} apply >/dev/null 2>&1; echo rc=$?) & done; wait")
    assert sorted(outcome.split()) == ["rc=0"] * 8, outcome
    assert rules(lab) == before
    assert f"{CHAIN}-NEXT" not in lab.ssh("iptables -S")
