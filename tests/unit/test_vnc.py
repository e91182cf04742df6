"""``ibgw-ops vnc``: the role's vnc action picks the port, the tunnel is the ssh verb's argv plus one forward."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import ansible_runner
import pytest
import yaml

from ibgw_ops import cli
from ibgw_ops.commands import vnc
from ibgw_ops.errors import BadInput, ExitCode
from tests.unit.fake_runner import FakeRunner, ok, stats
from tests.unit.test_shell import IAP, LAB

REAL_POPEN = subprocess.Popen
FORWARD = ["-N", "-o", "ExitOnForwardFailure=yes", "-L"]


def row(instance: str, vnc_port: int | str, host: str = "gw1") -> dict[str, object]:
    return {"host": host, "instance": instance, "mode": instance.partition("-")[0], "vnc_port": vnc_port}


def test_the_tunnel_through_iap_forwards_loopback_to_loopback_and_runs_no_command():
    assert vnc.tunnel_argv(IAP, 5901, 5901) == [
        "ssh", "-o", "ProxyCommand=gcloud compute start-iap-tunnel ibgw-1 22 --listen-on-stdin --zone europe-west1-b",
        "-o", "StrictHostKeyChecking=yes", *FORWARD, "127.0.0.1:5901:127.0.0.1:5901", "-i", "/home/op/.ssh/ibgw",
        "--", "ibgw@ibgw-1"]


def test_the_lab_tunnel_keeps_the_lab_s_port_key_and_known_hosts_with_another_local_port():
    assert vnc.tunnel_argv(LAB, 15900, 5900) == [
        "ssh", "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=/s/lab/known_hosts", "-o",
        "StrictHostKeyChecking=yes", *FORWARD, "127.0.0.1:15900:127.0.0.1:5900", "-p", "22", "-i", "/s/lab/id",
        "--", "root@172.17.0.2"]


def test_an_unknown_instance_several_hosts_and_vnc_off_are_refused_naming_the_field():
    rows = [row("live", 0), row("paper", "5901"), row("paper-b", 5912, "gw1"), row("paper-b", 5912, "gw2")]
    assert vnc.pick(rows, "paper") is rows[1]
    with pytest.raises(BadInput, match=r"^INSTANCE: 'papr' is not an instance of the inventory "
                                        r"\(allowed: live, paper, paper-b\)$"):
        vnc.pick(rows, "papr")
    with pytest.raises(BadInput, match=r"^--limit: instance 'paper-b' is on several hosts: say which "
                                        r"\(allowed: gw1, gw2\)$"):
        vnc.pick(rows, "paper-b")
    with pytest.raises(BadInput, match=r"^ib_gateway_credentials.live.vnc_password: not set, so its VM serves no "
                                        r"VNC \(allowed: a vnc_password \(or vnc_password_secret\) for live"):
        vnc.pick(rows, "live")


@pytest.mark.parametrize("port", ["0", "65536", "x", "-1"])
def test_a_local_port_outside_1_to_65535_is_refused(port, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["vnc", "paper", "--local-port", port])
    assert exited.value.code == ExitCode.BAD_INPUT
    assert f"'{port}' is not a port (allowed: 1-65535)" in capsys.readouterr().err


class FakeTunnel:
    """ssh -N as Popen sees it: ``wait`` returns ``code``, after the operator's Ctrl-C when ``interrupt``."""

    def __init__(self, code: int, *, interrupt: bool) -> None:
        self.code, self.interrupt = code, interrupt
        self.argv: list[str] = []
        self.signals: list[int] = []

    def __call__(self, argv: list[str], **kwargs: object) -> object:
        if argv[0] != "ssh":
            return REAL_POPEN(argv, **kwargs)
        self.argv = argv
        return self

    def send_signal(self, signum: int) -> None:
        self.signals.append(signum)

    def wait(self, timeout: float | None = None) -> int:
        if self.interrupt:
            os.kill(os.getpid(), signal.SIGINT)
        return self.code


class DeafTunnel(FakeTunnel):
    """An ssh that outlives its SIGTERM: only ``kill`` ends it."""

    def __init__(self) -> None:
        super().__init__(-9, interrupt=True)
        self.killed = False
        self.waits = 0

    def kill(self) -> None:
        self.killed = True

    def wait(self, timeout: float | None = None) -> int:
        if self.killed:
            return self.code
        self.waits += 1
        assert self.waits < 20, "ssh was never killed"
        if self.interrupt:
            self.interrupt = False
            os.kill(os.getpid(), signal.SIGINT)
        raise subprocess.TimeoutExpired(self.argv, timeout or 0)


@pytest.fixture
def inventory(monkeypatch, tmp_path: Path) -> FakeRunner:
    recorder = FakeRunner()
    monkeypatch.setattr(ansible_runner, "run", recorder)
    monkeypatch.setenv("IBGW_OPS_STATE_DIR", str(tmp_path / "state"))
    # The verbs refuse a key file that is missing: the lab's is made here.
    monkeypatch.setitem(LAB, "ansible_ssh_private_key_file", str(tmp_path / "id"))
    (tmp_path / "id").write_text("key\n")
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(
        {"all": {"children": {"ibgw_gateways": {"hosts": {"gw1": LAB}}}}}))
    monkeypatch.setenv("IBGW_OPS_INVENTORY", str(tmp_path / "hosts.yml"))
    recorder.script["vnc.yml"] = ([ok({"ibgw_vnc": row("live", "0")}), ok({"ibgw_vnc": row("paper", "5901")}),
                                   stats()], "successful")
    return recorder


def test_the_verb_asks_the_vnc_action_and_holds_the_tunnel_until_ctrl_c(inventory, monkeypatch, capsys):
    tunnel = FakeTunnel(255, interrupt=True)
    monkeypatch.setattr(subprocess, "Popen", tunnel)
    assert cli.main(["vnc", "paper", "--local-port", "15901"]) == ExitCode.OK
    assert inventory.playbooks() == [("vnc.yml", {"ib_gateway_target": "all"})]
    assert tunnel.argv == vnc.tunnel_argv(LAB, 15901, 5901)
    assert tunnel.signals == [signal.SIGTERM]
    out, err = capsys.readouterr()
    assert "point a VNC viewer at 127.0.0.1:15901" in out and "tunnel closed" in err


def test_an_ssh_that_outlives_its_sigterm_is_killed_and_ctrl_c_still_closes_the_tunnel(inventory, monkeypatch, capsys):
    tunnel = DeafTunnel()
    monkeypatch.setattr(subprocess, "Popen", tunnel)
    monkeypatch.setattr(vnc, "TERM_GRACE", 0.0)
    assert cli.main(["vnc", "paper"]) == ExitCode.OK
    assert tunnel.signals == [signal.SIGTERM] and tunnel.killed
    assert "tunnel closed" in capsys.readouterr().err


def test_the_verb_exits_as_ssh_did_and_defaults_the_local_port_to_the_instance_s(inventory, monkeypatch):
    tunnel = FakeTunnel(255, interrupt=False)
    monkeypatch.setattr(subprocess, "Popen", tunnel)
    assert cli.main(["vnc", "paper"]) == 255
    assert tunnel.argv == vnc.tunnel_argv(LAB, 5901, 5901) and tunnel.signals == []


def test_the_verb_refuses_vnc_off_before_any_ssh(inventory, monkeypatch, capsys):
    tunnel = FakeTunnel(0, interrupt=False)
    monkeypatch.setattr(subprocess, "Popen", tunnel)
    assert cli.main(["vnc", "live"]) == ExitCode.BAD_INPUT
    assert "ib_gateway_credentials.live.vnc_password: not set" in capsys.readouterr().err
    assert tunnel.argv == []
