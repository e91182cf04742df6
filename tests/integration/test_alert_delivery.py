"""Alerts from the VM reach a person: an Apprise ``json://`` URL (through Debian's apprise on the VM) and the plain
webhook both get each alert; a webhook that is down when the incident happens gets it within 60 s of coming back,
once; a lasting problem is said again at its interval; the heartbeat pings while all is well and fails within one
tick of a problem; a bad Apprise URL is refused at deploy with exit 2, naming its position, changing nothing.

The receivers listen on this machine at the lab network's gateway address (what the VM sees of it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from ibgw_ops.errors import ExitCode
from tests.support.lab import Lab, wait_for
from tests.support.webhook import Receiver

# A dead webhook is one of the faults a trading week brings: the reliability group (its roles VM) runs this module.
pytestmark = [pytest.mark.integration, pytest.mark.reliability]
INTERVAL = 3
REPEAT = 20
STATE = "/var/lib/ibgw-ops/watchdog"
ALERT_FILES = "/opt/ibgw/alert-webhook /opt/ibgw/alert-apprise /opt/ibgw/heartbeat-url"


class Sinks:
    """The three receivers: the plain webhook, Apprise's json:// target and the heartbeat."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.hook, self.apprise, self.beat = Receiver(host=host), Receiver(host=host), Receiver(host=host)

    def settings(self, **more: object) -> dict:
        apprise_host, apprise_port = self.apprise.server_address[:2]
        return {"ib_gateway_instances": [{"name": "live", "mode": "live"}, {"name": "paper", "mode": "paper"}],
                "ib_gateway_watchdog_interval": INTERVAL, "ib_gateway_watchdog_not_ready_ticks": 2,
                "ib_gateway_alert_webhook": self.hook.url, "ib_gateway_alert_timeout": 2,
                "ib_gateway_alert_urls": [f"json://{apprise_host}:{apprise_port}/apprise"],
                "ib_gateway_alert_repeat_interval": REPEAT, "ib_gateway_heartbeat_url": self.beat.url, **more}

    def urls(self) -> list[str]:
        return [self.hook.url, self.beat.url, f"{self.apprise.server_address[1]}/apprise"]

    def hook_kinds(self, instance: str) -> list[str]:
        return [body["kind"] for body in self.hook.bodies if body["instance"] == instance]

    def apprise_titles(self, instance: str) -> list[str]:
        return [body["title"] for body in self.apprise.bodies if f" {instance} on " in body["title"]]

    def shutdown(self) -> None:
        for receiver in (self.hook, self.apprise, self.beat):
            receiver.shutdown()
            receiver.server_close()


@pytest.fixture(scope="module")
def sinks(deployed: Lab) -> Iterator[Sinks]:
    found = Sinks(deployed.controller)
    yield found
    found.shutdown()


@pytest.fixture(scope="module")
def alerting(deployed: Lab, sinks: Sinks) -> Iterator[Lab]:
    """The roles VM with the watchdog every few seconds and every alert destination set; no state from before."""
    deployed.ssh(f"systemctl stop 'ibgw-watchdog@*.timer'; rm -rf {STATE}")
    deployed.use_settings(sinks.settings())
    yield deployed
    deployed.cli("down", "all", check=False)
    deployed.ssh(f"systemctl stop 'ibgw-watchdog@*.timer'; rm -rf {STATE}")
    deployed.use_settings(None)


def test_the_alert_urls_are_root_only_files_and_nowhere_else(alerting, sinks):
    modes = alerting.ssh(f"stat -c '%n %a %U' {ALERT_FILES}").splitlines()
    assert modes == [f"{path} 400 root" for path in ALERT_FILES.split()]
    assert "apprise" in alerting.ssh("command -v apprise")
    seen = alerting.ssh("cat /etc/systemd/system/ibgw-watchdog@.* /opt/ibgw/*/watchdog.json /opt/ibgw/*/start.json; "
                        "systemctl show -p Environment,ExecStart ibgw-watchdog@paper.service; ps -eo args")
    again = alerting.playbook("site.yml", "--tags", "ib_gateway", "-vvv")
    assert again.returncode == 0, again.stdout[-3000:]
    for url in sinks.urls():
        assert url not in seen and url not in again.stdout + again.stderr, url


def test_apprise_and_the_webhook_get_each_alert_a_lasting_one_again_and_the_heartbeat_follows(alerting, sinks):
    alerting.cli("paper-up")
    wait_for("a heartbeat", lambda: any(path == "/hook" for path, _ in sinks.beat.requests), 30, 0.2)
    assert not [path for path, _ in sinks.beat.requests if path.endswith("/fail")], "all is well so far"
    alerting.ssh("docker kill ibgw-paper >/dev/null")
    wait_for("the webhook's container_exited", lambda: sinks.hook_kinds("paper") == ["container_exited"], 60, 0.2)
    alerted = time.monotonic()
    wait_for("Apprise's container_exited", lambda: len(sinks.apprise_titles("paper")) == 1, 30, 0.2)
    (body,) = [b for b in sinks.apprise.bodies if b["title"] == sinks.apprise_titles("paper")[0]]
    assert body["title"] == f"IB Gateway paper on {alerting.name}: container_exited", body
    assert "exit code 137" in body["message"] and "What to do: " in body["message"]
    fails = wait_for("the heartbeat's /fail", lambda: any(p.endswith("/hook/fail") for p, _ in sinks.beat.requests),
                     INTERVAL + 10, 0.2)
    assert fails - alerted <= INTERVAL + 10, "within one tick of the problem"
    wait_for("the repeat", lambda: sinks.hook_kinds("paper") == ["container_exited"] * 2, REPEAT + 30, 0.5)
    repeat = [b for b in sinks.hook.bodies if b["instance"] == "paper"][1]
    assert repeat["detail"].startswith("still container_exited, since "), repeat
    wait_for("Apprise's repeat", lambda: len(sinks.apprise_titles("paper")) == 2, 30, 0.2)
    alerting.cli("paper-up")
    wait_for("recovered", lambda: sinks.hook_kinds("paper")[-1:] == ["recovered"], 60, 0.2)
    count = len(sinks.beat.requests)
    wait_for("a healthy heartbeat again", lambda: sinks.beat.requests[-1][0] == "/hook"
             and len(sinks.beat.requests) > count, INTERVAL * 3 + 10, 0.2)
    alerting.cli("paper-down")


def test_a_webhook_down_at_the_incident_gets_it_once_within_60_s_of_coming_back(alerting, sinks):
    alerting.use_settings(sinks.settings(ib_gateway_alert_repeat_interval=0))
    alerting.cli("paper-up")
    before_hook, before_apprise = len(sinks.hook_kinds("paper")), len(sinks.apprise_titles("paper"))
    port = sinks.hook.server_address[1]
    sinks.hook.shutdown()
    sinks.hook.server_close()
    alerting.ssh("docker kill ibgw-paper >/dev/null")
    wait_for("Apprise's alert meanwhile", lambda: len(sinks.apprise_titles("paper")) == before_apprise + 1, 60, 0.2)
    wait_for("the alert kept in the spool", lambda: alerting.ssh(
        f"ls {STATE}/spool/paper/webhook | grep -c json || true").strip() == "1", 30, 0.5)
    time.sleep(2 * INTERVAL)  # a few failed tries
    bodies = sinks.hook.bodies
    sinks.hook = Receiver(host=sinks.host, port=port)
    sinks.hook.bodies[:0] = bodies
    back = time.monotonic()
    wait_for("the spooled alert", lambda: len(sinks.hook_kinds("paper")) == before_hook + 1, 60, 0.2)
    assert time.monotonic() - back <= 60
    assert sinks.hook_kinds("paper")[-1] == "container_exited"
    time.sleep(3 * INTERVAL)
    assert len(sinks.hook_kinds("paper")) == before_hook + 1, "nothing doubled"
    assert len(sinks.apprise_titles("paper")) == before_apprise + 1, "Apprise got it once, not delayed, not again"
    journal = alerting.ssh("journalctl -u ibgw-watchdog@paper.service -o cat | grep 'destination webhook failed'")
    assert "kept in the spool" in journal and sinks.hook.url not in journal
    alerting.cli("down", "paper")


def test_a_bad_apprise_url_is_refused_at_deploy_naming_its_position_and_changing_nothing(alerting, sinks):
    before = vm_files(alerting)
    alerting.host_settings(sinks.settings(ib_gateway_alert_urls=["json://127.0.0.1:9/fine", "nope://T0KEN-x"]))
    refused = alerting.cli("deploy", check=False)
    assert refused.returncode == ExitCode.BAD_INPUT, refused.stderr
    assert "ib_gateway_alert_urls[1]: not a URL Apprise can use" in refused.stderr
    assert "T0KEN" not in refused.stdout + refused.stderr
    assert vm_files(alerting) == before
    alerting.host_settings(sinks.settings())


def vm_files(lab: Lab) -> str:
    """Every file the role writes on the VM (but the gateways' settings volumes), by checksum."""
    return lab.ssh("find /opt/ibgw /etc/systemd/system -type f ! -path '*/settings/*' -print0 | sort -z "
                   "| xargs -0 sha256sum")
