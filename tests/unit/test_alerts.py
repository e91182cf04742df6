"""Alerts: the one-line record, the webhook's JSON, and a webhook that fails never changes the outcome."""

from __future__ import annotations

import pytest

from ibgw_ops import alerts, cli
from ibgw_ops.alerts import Alert
from ibgw_ops.errors import ExitCode
from tests.conftest import free_port
from tests.support.webhook import Receiver


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.shutdown()


def test_an_alert_is_one_grep_able_line_and_a_json_post(receiver, monkeypatch, capsys):
    monkeypatch.setenv(alerts.WEBHOOK_ENV, receiver.url)
    alerts.emit(Alert("session_taken", "paper", "the login is\n in use elsewhere", host="gw1"))
    assert capsys.readouterr().err == "IBGW_ALERT session_taken paper the login is in use elsewhere\n"
    (body,) = receiver.bodies
    assert body["kind"] == "session_taken" and body["instance"] == "paper" and body["host"] == "gw1"
    assert body["detail"] == "the login is\n in use elsewhere" and body["time"].endswith("+00:00")


@pytest.mark.parametrize("status", [500, 404])
def test_a_webhook_that_answers_an_error_is_noted_and_nothing_else(monkeypatch, capsys, status):
    server = Receiver(status=status)
    monkeypatch.setenv(alerts.WEBHOOK_ENV, server.url)
    alerts.emit(Alert("not_ready", "live", "x"))
    err = capsys.readouterr().err
    assert err.startswith("IBGW_ALERT not_ready live x\n") and f"webhook failed (HTTP Error {status}" in err
    server.shutdown()


def test_a_webhook_that_hangs_is_given_up_after_its_timeout(monkeypatch, capsys):
    server = Receiver(delay=10)
    monkeypatch.setenv(alerts.WEBHOOK_ENV, server.url)
    monkeypatch.setenv(alerts.TIMEOUT_ENV, "0.5")
    alerts.emit(Alert("not_ready", "live", "x"))
    assert "webhook failed" in capsys.readouterr().err
    server.release.set()
    server.shutdown()


def test_a_webhook_nobody_listens_on_does_not_fail_the_verb(monkeypatch, capsys):
    monkeypatch.setenv(alerts.WEBHOOK_ENV, f"http://127.0.0.1:{free_port()}/hook")
    alerts.emit(Alert("not_ready", "live", "x"))
    assert "webhook failed" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "value", "words"), [
    (alerts.WEBHOOK_ENV, "file:///etc/passwd", "not an http(s) URL"),
    (alerts.WEBHOOK_ENV, "hooks.example.net/x", "not an http(s) URL"),
    (alerts.TIMEOUT_ENV, "soon", "'soon' is not a number of seconds (allowed: more than 0, at most 60)"),
    (alerts.TIMEOUT_ENV, "0", "is not a number of seconds"),
])
def test_a_bad_webhook_setting_is_bad_input_before_anything_runs(monkeypatch, capsys, name, value, words):
    monkeypatch.setenv(alerts.WEBHOOK_ENV, "https://hooks.example.net/x")
    monkeypatch.setenv(name, value)
    assert cli.main(["status"]) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert name in err and words in err


def inventory_with(tmp_path, hosts: dict[str, list[str]]):
    """A static inventory whose gateway hosts set the given Apprise URLs."""
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "hosts.yml").write_text(
        "ibgw_gateways:\n  hosts:\n" + "".join(f"    {name}: {{}}\n" for name in hosts))
    for name, urls in hosts.items():
        (tmp_path / "host_vars" / f"{name}.yml").write_text(f"ib_gateway_alert_urls: {urls!r}\n")
    return tmp_path


def test_the_inventory_s_apprise_urls_get_the_alert_from_the_controller_and_a_failing_one_is_named_by_position(
        receiver, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(alerts.WEBHOOK_ENV, raising=False)
    port = receiver.server_address[1]
    source = inventory_with(tmp_path, {"gw1": [f"json://127.0.0.1:{port}/a", f"json://127.0.0.1:{free_port()}/T0KEN"],
                                       "gw2": [f"json://127.0.0.1:{port}/b"]})
    alerts.emit(Alert("session_expiring", "live", "good until 06:00 UTC", host="gw1"), source)
    (body,) = receiver.bodies
    assert body["title"] == "IB Gateway live on gw1: session_expiring"
    assert body["message"].startswith("good until 06:00 UTC\nWhat to do: plan the next ibgw-ops live-signin")
    err = capsys.readouterr().err
    assert "ib_gateway_alert_urls[1] did not take the alert" in err and "T0KEN" not in err
    alerts.emit(Alert("2fa_needed", "live", "approve by 22:10"), source)
    assert [path for path, _ in receiver.requests] == ["/a", "/a", "/b"], "no host named: every host's URLs, once"
