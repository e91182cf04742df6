"""The VM's alert spool: each alert reaches each destination once and in order, a dead destination is retried with
backoff and never delays the others, the spool stays within its bounds, and no URL is ever in an argument or a note.
Destinations are played by functions that fail on demand, the webhook by a local receiver, Apprise by a fake run."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta

import pytest

from ibgw_ops.on_host import alert_spool
from ibgw_ops.on_host.alert import Alert
from ibgw_ops.on_host.alert_spool import Destination, Spool
from tests.support.webhook import Receiver

T0 = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
URL = "slack://T0KEN-a/B0KEN-b/C0KEN-c"


class Endpoint:
    """A destination that records what it took and fails while ``down``."""

    def __init__(self, key: str) -> None:
        self.key, self.down, self.took, self.tries = key, False, [], 0

    def send(self, alert: Alert) -> str:
        self.tries += 1
        if self.down:
            return "connection refused"
        self.took.append(alert.detail)
        return ""

    @property
    def destination(self) -> Destination:
        return Destination(self.key, self.send)


def alerts(*details: str) -> list[Alert]:
    return [Alert("not_ready", "live", detail, host="gw1", time=T0.isoformat()) for detail in details]


def deliver(folder: str, endpoints: list[Endpoint], now: datetime, *details: str) -> list[str]:
    spool = Spool(folder, now)
    spool.add(alerts(*details), [endpoint.key for endpoint in endpoints])
    return spool.flush([endpoint.destination for endpoint in endpoints])


def test_a_dead_destination_keeps_its_alerts_in_order_until_it_answers_and_never_delays_the_others(tmp_path):
    folder = str(tmp_path / "spool")
    dead, alive = Endpoint("webhook"), Endpoint("apprise-1")
    dead.down = True
    notes = deliver(folder, [dead, alive], T0, "a", "b")
    assert alive.took == ["a", "b"] and dead.took == [] and dead.tries == 1, "the first failure stops that one only"
    assert notes == ["the alert destination webhook failed (connection refused); 2 alert(s) kept in the spool, "
                     "tried again in 5 s"]
    deliver(folder, [dead, alive], T0 + timedelta(seconds=1), "c")
    assert dead.tries == 1, "inside its backoff the dead destination is not tried"
    assert alive.took == ["a", "b", "c"]
    dead.down = False
    assert deliver(folder, [dead, alive], T0 + timedelta(seconds=6)) == []
    assert dead.took == ["a", "b", "c"] and alive.took == ["a", "b", "c"], "each alert once, in order"
    assert deliver(folder, [dead, alive], T0 + timedelta(seconds=40)) == [] and dead.took == ["a", "b", "c"]


def wait_of(notes: list[str]) -> int:
    (note,) = notes
    return int(note.split("again in ")[1].split(" s")[0])


def test_the_backoff_doubles_from_5_to_at_most_30_seconds_and_resets_after_a_delivery(tmp_path):
    folder = str(tmp_path / "spool")
    hook = Endpoint("webhook")
    hook.down = True
    now = T0
    waits = [wait_of(deliver(folder, [hook], now, "a"))]
    for _ in range(4):
        now += timedelta(seconds=waits[-1])
        waits.append(wait_of(Spool(folder, now).flush([hook.destination])))
    assert waits == [5, 10, 20, 30, 30] and hook.tries == 5
    hook.down = False
    now += timedelta(seconds=30)
    Spool(folder, now).flush([hook.destination])
    assert hook.took == ["a"] and not os.path.exists(os.path.join(folder, "webhook.retry"))
    hook.down = True
    assert "again in 5 s" in deliver(folder, [hook], now, "b")[0]


def test_the_spool_drops_alerts_older_than_a_week_and_beyond_its_count_oldest_first(tmp_path, monkeypatch):
    folder = str(tmp_path / "spool")
    hook = Endpoint("webhook")
    hook.down = True
    deliver(folder, [hook], T0 - timedelta(days=8), "too old")
    monkeypatch.setattr(alert_spool, "MAX_ENTRIES", 3)
    for index in range(5):
        Spool(folder, T0 + timedelta(seconds=index)).add(alerts(f"n{index}"), ["webhook"])
    hook.down = False
    notes = Spool(folder, T0 + timedelta(minutes=5)).flush([hook.destination])
    assert hook.took == ["n2", "n3", "n4"]
    assert notes == ["dropped 3 undelivered alert(s) for webhook: older than 7 days or more than 3"]


def test_a_destination_no_longer_set_takes_its_undelivered_alerts_with_it(tmp_path):
    folder = str(tmp_path / "spool")
    gone, kept = Endpoint("apprise-0a1b2c3d4e5f"), Endpoint("webhook")
    gone.down = True
    deliver(folder, [gone, kept], T0, "a")
    notes = Spool(folder, T0 + timedelta(minutes=1)).flush([kept.destination])
    assert notes == ["dropped 1 undelivered alert(s) for apprise-0a1b2c3d4e5f: no longer a destination"]
    assert sorted(os.listdir(folder)) == ["webhook"]


def test_the_spool_is_root_only(tmp_path):
    folder = str(tmp_path / "spool")
    hook = Endpoint("webhook")
    hook.down = True
    deliver(folder, [hook], T0, "a")
    (entry,) = os.listdir(os.path.join(folder, "webhook"))
    assert stat.S_IMODE(os.stat(os.path.join(folder, "webhook")).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(folder, "webhook", entry)).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.join(folder, "webhook.retry")).st_mode) == 0o600


class FakeApprise:
    """Apprise's program as the spool runs it: the arguments, and an exit code."""

    def __init__(self, code: int = 0) -> None:
        self.code, self.calls = code, []

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(argv)
        return self.code, f"sent to {URL}", f"error from {URL}"


@pytest.fixture
def settings(tmp_path):
    (tmp_path / "alert-apprise").write_text(f"0a1b2c3d4e5f={URL}\n9f8e7d6c5b4a=json://127.0.0.1:9/x\n")
    return {"webhook_file": str(tmp_path / "webhook"), "apprise_file": str(tmp_path / "alert-apprise"),
            "webhook_timeout": 1, "spool_dir": str(tmp_path / "spool")}


def test_apprise_gets_the_configuration_file_and_a_tag_never_the_url(settings, capsys):
    apprise = FakeApprise()
    alert_spool.emit(alerts("the API is not ready"), settings, "ibgw-watchdog", apprise, T0)
    assert [call[call.index("--tag") + 1] for call in apprise.calls] == ["0a1b2c3d4e5f", "9f8e7d6c5b4a"]
    (first, _) = apprise.calls
    assert first[:3] == ["apprise", "--config", settings["apprise_file"]]
    assert first[first.index("--title") + 1] == "IB Gateway live on gw1: not_ready"
    body = first[first.index("--body") + 1]
    assert body.startswith("the API is not ready\nWhat to do: ") and "live-signin" in body
    assert not [call for call in apprise.calls if URL in " ".join(call) or "json://" in " ".join(call)]
    assert capsys.readouterr().out == "IBGW_ALERT not_ready live the API is not ready\n"


def test_a_failing_apprise_is_spooled_and_its_output_never_reaches_a_note(settings, capsys):
    apprise = FakeApprise(code=1)
    alert_spool.emit(alerts("a"), settings, "ibgw-watchdog", apprise, T0)
    err = capsys.readouterr().err
    assert "the alert destination apprise-0a1b2c3d4e5f failed (apprise exited 1)" in err and URL not in err
    apprise.code = 0
    alert_spool.emit([], settings, "ibgw-watchdog", apprise, T0 + timedelta(seconds=10))
    assert len(apprise.calls) == 4, "each tag once more, then nothing is left"
    alert_spool.emit([], settings, "ibgw-watchdog", apprise, T0 + timedelta(seconds=60))
    assert len(apprise.calls) == 4


def test_the_webhook_and_apprise_each_get_the_alert(settings):
    receiver = Receiver()
    try:
        with open(settings["webhook_file"], "w") as hook:
            hook.write(receiver.url)
        apprise = FakeApprise()
        alert_spool.emit(alerts("x"), settings, "ibgw-watchdog", apprise, T0)
        assert [body["detail"] for body in receiver.bodies] == ["x"] and len(apprise.calls) == 2
    finally:
        receiver.shutdown()
