"""The ib_gateway role's filters: instances resolved, credentials sorted by name, never a value returned."""

from __future__ import annotations

import base64
import json
from types import ModuleType
from typing import Any

import pytest

from tests.support.layout import role_defaults, settings_filters

SECRET = "projects/p-12345/secrets/ibkr/versions/1"
PATTERN = r"^projects/[a-z0-9-]+/secrets/[A-Za-z0-9_-]+/versions/(latest|[1-9][0-9]*)$"


@pytest.fixture(scope="module")
def plugin() -> ModuleType:
    return settings_filters()


INSTANCES = [{"name": "live", "mode": "live"}, {"name": "paper", "mode": "paper"}, {"name": "spare", "mode": "paper"}]


def test_an_instance_s_keys_win_over_its_mode_s_and_the_role_s(plugin):
    resolved = plugin.resolve_instances(
        [{"name": "paper", "mode": "paper", "api_port": 4100}, {"name": "other", "mode": "unknown"}],
        {"image": "img:1", "api_port": 1},
        {"paper": {"api_port": 4002, "vnc_port": 5901}})
    assert resolved == [{"name": "paper", "mode": "paper", "image": "img:1", "api_port": 4100, "vnc_port": 5901},
                        {"name": "other", "mode": "unknown", "image": "img:1", "api_port": 1}]


def test_missing_ambiguous_and_badly_named_credentials_are_named_by_instance_and_key(plugin):
    credentials = {
        "live": {"user_id": "u", "password": "pw-live", "password_secret": SECRET},
        "paper": {"user_id": "u", "password_secret": "projects/x/secrets"},
        "spare": {"user_id": None, "password": "pw-spare"},
    }
    assert plugin.missing_credentials(INSTANCES, credentials) == ["spare"]
    assert plugin.missing_credentials(INSTANCES, {}) == ["live", "paper", "spare"]
    assert plugin.ambiguous_credentials(INSTANCES, credentials) == ["live.password"]
    assert plugin.bad_secret_names(INSTANCES, credentials, PATTERN) == ["paper.password_secret"]
    everything = repr([plugin.missing_credentials(INSTANCES, credentials),
                       plugin.ambiguous_credentials(INSTANCES, credentials),
                       plugin.bad_secret_names(INSTANCES, credentials, PATTERN),
                       plugin.secret_files(INSTANCES, credentials)])
    assert "pw-" not in everything


def test_every_credential_problem_is_one_message_each_at_once_never_with_a_value(plugin):
    credentials = {"live": {"user_id": "u", "password": "pw-live\n", "password_secret": SECRET},
                   "paper": {"user_id": "u", "password_secret": "projects/x/secrets"}}
    good = {"metadata_url": "http://169.254.169.254/v1", "secret_manager_url": "https://sm.example/v1", "timeout": 10}
    errors = plugin.credential_errors(INSTANCES, credentials, PATTERN, good)
    assert [error.split(" ", 2)[1] for error in errors] == ["instances", "live.password", "live.password",
                                                            "paper.password_secret"]
    assert "['spare'] need user_id and password" in errors[0] and "given both" in errors[1]
    assert "control character" in errors[2] and "must be a Secret Manager version name" in errors[3]
    assert "pw-" not in repr(errors)
    assert plugin.credential_errors(INSTANCES[:1], {"live": {"user_id": "u", "password": "p"}}, PATTERN, good) == []
    for bad in ({"metadata_url": "metadata"}, {"secret_manager_url": "https://a b"}, {"timeout": 0},
                {"timeout": "soon"}):
        errors = plugin.credential_errors([], {}, PATTERN, {**good, **bad})
        assert len(errors) == 1 and errors[0].startswith("ib_gateway_metadata_url and ib_gateway_secret_manager_url")


def test_deploy_reports_each_gateway_then_the_open_windows_then_the_pending_restarts(plugin):
    def result(name: str, container: str, pending: bool) -> dict[str, Any]:
        return {"name": name, "container": container, "restart_pending": pending,
                "image": "img:set-before" if container == "running" else "", "image_id": "sha256:1",
                "image_digest": ""}

    instances = [{"name": name, "image": f"img:{name}"} for name in ("live", "paper", "spare")]
    report = plugin.deploy_report([result("live", "running", False), result("paper", "absent", False),
                                   result("spare", "running", True)], instances, ["live"], ["paper", "spare"])
    assert [(kind, entry["instance"]) for row in report for kind, entry in row.items()] == [
        ("ibgw_deployed", "live"), ("ibgw_deployed", "paper"), ("ibgw_deployed", "spare"),
        ("ibgw_notice", "paper"), ("ibgw_notice", "spare"), ("ibgw_notice", "live")]
    assert [row["ibgw_deployed"]["restart_pending"] for row in report[:3]] == [True, False, True]
    assert [row["ibgw_deployed"]["image"] for row in report[:3]] == ["img:set-before", "img:paper", "img:set-before"]
    assert report[3]["ibgw_notice"]["message"].startswith("window open now: paper is not running")
    assert report[4]["ibgw_notice"]["message"].startswith("restart pending: gateway spare")


def test_control_characters_in_credentials_are_named_by_instance_and_key_never_shown(plugin):
    credentials = {"live": {"user_id": "u", "password": "pw-live\n"}, "paper": {"user_id": "u\t", "password": "ok"},
                   "spare": {"user_id": "u", "password": "pw-spare", "vnc_password": "v\x7f"}}
    named = plugin.control_character_credentials(INSTANCES, credentials)
    assert named == ["live.password", "paper.user_id", "spare.vnc_password"]
    assert plugin.control_character_credentials(INSTANCES, {"live": {"user_id": "u", "password": "p w!"}}) == []


def test_a_user_id_with_a_space_or_a_non_ascii_character_is_named_and_a_password_may_hold_them(plugin):
    credentials = {"live": {"user_id": "jane doe", "password": "pé w"}, "paper": {"user_id": "jané", "password": "p"},
                   "spare": {"user_id": "jane_doe1", "password": "p"}}
    assert plugin.control_character_credentials(INSTANCES, credentials) == ["live.user_id", "paper.user_id"]


def test_a_credentials_file_looser_than_0600_is_named_by_its_mode(plugin, tmp_path):
    path = tmp_path / "credentials.yml"
    path.write_text("{}\n")
    for mode, shown in ((0o600, ""), (0o400, ""), (0o644, "0644"), (0o660, "0660"), (0o604, "0604")):
        path.chmod(mode)
        assert plugin.loose_file_mode(str(path)) == shown


def test_each_secret_file_says_where_it_comes_from(plugin):
    credentials = {
        "live": {"user_id": "u", "password_secret": SECRET, "vnc_password": "v"},
        "paper": {"user_id": "u", "password": "p", "vnc_password": ""},
    }
    assert plugin.secret_files(INSTANCES, credentials) == [
        {"instance": "live", "file": "tws_password", "key": "password_secret", "secret_manager": True},
        {"instance": "live", "file": "vnc_password", "key": "vnc_password", "secret_manager": False},
        {"instance": "paper", "file": "tws_password", "key": "password", "secret_manager": False},
    ]
    assert plugin.vnc_instances(INSTANCES, credentials) == ["live"]


def test_the_filters_are_registered_under_the_role_s_prefix(plugin):
    names = plugin.FilterModule().filters()
    assert all(name.startswith("ib_gateway_") for name in names)
    assert names["ib_gateway_secret_files"] is plugin.secret_files


def good_instance(**settings: Any) -> dict[str, Any]:
    instance = {"name": "live", "mode": "live", "api_port": 4001, "vnc_port": 5900, "restart_policy": "always",
                "existing_session_detected_action": "primary", "auto_restart_time": "11:45 PM", "max_lifetime": 0,
                "bind_address": "127.0.0.1", "image": "gnzsnz/ib-gateway:10.45.1j", "stop_grace_period": 120,
                "java_heap_size": 768, "nofile": 10000, "twofa_exit_interval": 60, "auto_logoff_time": "",
                "time_zone": "America/New_York", "cold_restart": "", "master_client_id": "", "extra_env": {}}
    return {**instance, **settings}


WINDOW = {"time_zone": "America/New_York", "days": ["mon", "fri"], "start": "09:30", "end": "16:00"}
SCHEDULE = {"day": "sun", "time": "17:00", "time_zone": "America/New_York"}
MAINTENANCE = role_defaults("ib_gateway")["ib_gateway_ibkr_maintenance"]
NIGHTLY = MAINTENANCE[0]
WATCHDOG = {"ib_gateway_watchdog_interval": 30, "ib_gateway_watchdog_not_ready_ticks": 3,
            "ib_gateway_disconnect_grace": 300, "ib_gateway_session_expiring_before": 3600,
            "ib_gateway_alert_timeout": 5, "ib_gateway_alert_webhook": "", "ib_gateway_alert_urls": [],
            "ib_gateway_alert_repeat_interval": 3600, "ib_gateway_heartbeat_url": ""}


def errors(plugin: ModuleType, instances: list[dict[str, Any]], *, full: bool = True, **settings: Any) -> list[str]:
    given = {"protected_window": WINDOW, "signin_schedule": SCHEDULE, "target": "all",
             "managed_env": ["TWS_PASSWORD", "TRADING_MODE"], "probe_client_id": 999, "pipeline_client_id": "",
             "instances": full, "watchdog": WATCHDOG, "maintenance": MAINTENANCE, **settings}
    return list(plugin.setting_errors(instances, given))


PAPER = {"name": "paper", "mode": "paper", "api_port": 4002, "vnc_port": 5901, "restart_policy": "no"}


def test_good_settings_have_no_errors(plugin):
    assert errors(plugin, [good_instance(), good_instance(**PAPER)]) == []
    assert errors(plugin, [good_instance()], protected_window={}) == []


@pytest.mark.parametrize(("instances", "settings", "expected"), [
    ([good_instance(), good_instance(api_port=4002, vnc_port=5901)], {}, "names unique"),
    ([good_instance(name="Live_1")], {}, "got ['Live_1']"),
    ([], {}, "ib_gateway_instances[].name: at least one instance"),
    ([good_instance(), good_instance(**{**PAPER, "api_port": 4001})], {}, "got api_port [4001, 4001]"),
    ([good_instance(api_port=70000)], {}, "ib_gateway_instances[].api_port / vnc_port: each must be 1-65535"),
    ([good_instance(**{**PAPER, "restart_policy": "always"})], {}, "ib_gateway_instances[paper].restart_policy"),
    ([good_instance(image="gnzsnz/ib-gateway:latest")], {}, "floating tags latest/stable are refused"),
    ([good_instance(image="gnzsnz/ib-gateway")], {}, "ib_gateway_instances[live].image"),
    ([good_instance(bind_address="10.0.0.300")], {}, "ib_gateway_instances[live].bind_address"),
    ([good_instance(auto_restart_time="9:30 PM")], {}, "ib_gateway_instances[live].auto_restart_time"),
    ([good_instance(max_lifetime=5)], {}, "max_lifetime 0 (off) or >= 60 (s, got 5)"),
    ([good_instance(stop_grace_period="30")], {}, "stop_grace_period >= 90 (s, got 30)"),
    ([good_instance(time_zone="Not a zone!")], {}, "time_zone a TZ name such as America/New_York"),
    ([good_instance(time_zone="America/NewYork")], {}, "(got 'America/NewYork')"),
    ([good_instance(mode="paper", restart_policy="no")], {}, "ib_gateway_instances[live].mode: an instance named live"),
    ([good_instance(**{**PAPER, "mode": "live"})], {}, "must have mode paper (got 'live')"),
    ([good_instance()], {"protected_window": {**WINDOW, "time_zone": "Mars/Olympus"}}, "(got {'time_zone': 'Mars"),
    ([good_instance()], {"signin_schedule": {**SCHEDULE, "time_zone": "Europe/Springfield"}}, "Springfield"),
    ([good_instance(cold_restart="7:00")], {}, "cold_restart \"HH:MM\""),
    ([good_instance(extra_env={"TWS_PASSWORD": "x"})], {}, "ib_gateway_instances[live].extra_env"),
    ([good_instance(extra_env={"lower": "x"})], {}, "ib_gateway_instances[live].extra_env"),
    ([good_instance(extra_env={"NOTE": "it's"})], {}, "no quotes or newlines in values"),
    ([good_instance()], {"protected_window": {**WINDOW, "start": "9:30"}}, "ib_gateway_protected_window: {} or"),
    ([good_instance()], {"protected_window": {**WINDOW, "days": ["monday"]}}, "(got {'time_zone'"),
    ([good_instance()], {"protected_window": {**WINDOW, "days": []}}, "ib_gateway_protected_window: {} or"),
    ([good_instance()], {"signin_schedule": {**SCHEDULE, "day": "sunday"}}, "ib_gateway_signin_schedule: {day"),
    ([good_instance()], {"target": "demo"}, "ib_gateway_target: 'demo' matches no instance (allowed: all, live)."),
    ([good_instance()], {"pipeline_client_id": 999}, "ib_gateway_pipeline_client_id (paper-run --client-id): 999 is "
                                                     "the readiness probe's client id, ib_gateway_probe_client_id"),
    ([good_instance()], {"probe_client_id": "77", "pipeline_client_id": 77}, "other than 77)."),
])
def test_each_bad_setting_is_named_with_what_is_allowed(plugin, instances, settings, expected):
    found = errors(plugin, instances, **settings)
    assert len(found) == 1
    assert expected in found[0]


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("ib_gateway_watchdog_interval", -1, "ib_gateway_watchdog_interval: a whole number of seconds from 0 to 3600 "
                                         "(0 turns it off) (got '-1')."),
    ("ib_gateway_watchdog_interval", "often", "(got 'often')"),
    ("ib_gateway_watchdog_interval", 3601, "from 0 to 3600"),
    ("ib_gateway_watchdog_not_ready_ticks", 0, "ib_gateway_watchdog_not_ready_ticks: a whole number of ticks "
                                               "from 1 to 1000"),
    ("ib_gateway_disconnect_grace", "5m", "ib_gateway_disconnect_grace: a whole number of seconds from 0"),
    ("ib_gateway_session_expiring_before", 1.5, "ib_gateway_session_expiring_before:"),
    ("ib_gateway_alert_timeout", 0, "ib_gateway_alert_timeout: seconds, more than 0 and at most 60 (got '0')."),
    ("ib_gateway_alert_webhook", "hooks.example.net/T0KEN", "ib_gateway_alert_webhook: empty, or an http(s) URL"),
    ("ib_gateway_alert_webhook", "file:///T0KEN", "the value is not shown"),
    ("ib_gateway_heartbeat_url", "hc-ping.example/T0KEN", "ib_gateway_heartbeat_url: empty, or an http(s) URL"),
    ("ib_gateway_alert_repeat_interval", -5, "ib_gateway_alert_repeat_interval: a whole number of seconds from 0 "
                                             "to 604800 (0 turns it off) (got '-5')."),
    ("ib_gateway_alert_urls", "slack://T0KEN/B/C", "ib_gateway_alert_urls: a list of Apprise URLs"),
    ("ib_gateway_alert_urls", ["json://127.0.0.1:9/ok", "T0KEN://nothing"], "ib_gateway_alert_urls[1]: not a URL "
                                                                             "Apprise can use"),
])
def test_each_bad_watchdog_setting_is_named_and_a_bad_webhook_is_never_shown(plugin, key, value, expected):
    (found,) = errors(plugin, [good_instance()], watchdog={**WATCHDOG, key: value})
    assert expected in found and "T0KEN" not in found
    assert errors(plugin, [good_instance()], full=False, watchdog={**WATCHDOG, key: value}) == []


@pytest.mark.parametrize(("maintenance", "expected"), [
    ({"name": "x"}, "ib_gateway_ibkr_maintenance: a list of {name: text, time_zone: an IANA name"),
    ([{**NIGHTLY, "name": " "}], "ib_gateway_ibkr_maintenance[0].name: a name the alerts can quote"),
    ([NIGHTLY, {**NIGHTLY, "days": ["sunday"]}], "ib_gateway_ibkr_maintenance[1].days: 'sunday' is not a day "
                                                 "(allowed: mon, tue"),
    ([{**NIGHTLY, "start": "9:30"}], "ib_gateway_ibkr_maintenance[0].start: "),
    ([{**NIGHTLY, "time_zone": "America/Springfield"}], "ib_gateway_ibkr_maintenance[0].time_zone: "),
    ([{key: value for key, value in NIGHTLY.items() if key != "end"}], "(got {'name': "),
])
def test_each_bad_maintenance_window_is_named_with_its_index_and_what_is_allowed(plugin, maintenance, expected):
    (found,) = errors(plugin, [good_instance()], maintenance=maintenance)
    assert expected in found, found
    assert errors(plugin, [good_instance()], full=False, maintenance=maintenance) == []


def test_good_watchdog_settings_pass(plugin):
    assert errors(plugin, [good_instance()], watchdog={**WATCHDOG, "ib_gateway_watchdog_interval": 0,
                                                       "ib_gateway_alert_webhook": "https://chat.example/h?k=1"}) == []


@pytest.mark.parametrize(("probe", "pipeline"), [(999, ""), (999, 1), (77, 999), (0, ""), ("77", "1")])
def test_a_pipeline_client_id_other_than_the_probe_s_or_none_is_fine(plugin, probe, pipeline):
    assert errors(plugin, [good_instance()], probe_client_id=probe, pipeline_client_id=pipeline) == []


def test_every_problem_is_reported_at_once_and_lifecycle_actions_skip_instance_settings(plugin):
    broken = [good_instance(image="x:latest", time_zone="?"), {**good_instance(**PAPER), "api_port": None}]
    assert len(errors(plugin, broken)) == 3
    assert len(errors(plugin, broken, full=False)) == 1
    lacking = {key: value for key, value in good_instance().items() if key != "restart_policy"}
    assert errors(plugin, [lacking], full=False) == [
        "ib_gateway_mode_defaults: an overridden dict lacks 'restart_policy' for instances ['live']; give every mode "
        "all of api_port, vnc_port, restart_policy, existing_session_detected_action, auto_restart_time, "
        "max_lifetime, or set the key on the instance."]


def test_a_target_selects_by_name_or_mode(plugin):
    instances = [good_instance(), good_instance(**PAPER), good_instance(**{**PAPER, "name": "paper2"})]
    assert [i["name"] for i in plugin.select(instances, "paper")] == ["paper", "paper2"]
    assert [i["name"] for i in plugin.select(instances, "paper2")] == ["paper2"]
    assert len(plugin.select(instances, "all")) == 3
    assert plugin.select(instances, "nosuch") == []


@pytest.mark.parametrize(("image", "floor", "refused"), [
    ("gnzsnz/ib-gateway:10.50.1d", "10.45.1j", False),
    ("gnzsnz/ib-gateway:10.45.1j", "10.45.1j", False),
    ("gnzsnz/ib-gateway:10.45.1k", "gnzsnz/ib-gateway:10.45.1j", False),
    ("gnzsnz/ib-gateway:10.45.1j@sha256:" + "a" * 64, "10.45.1j", False),
    ("gnzsnz/ib-gateway:10.45.1i", "10.45.1j", True),
    ("gnzsnz/ib-gateway:10.9.2a", "10.45.1j", True),
    ("gnzsnz/ib-gateway@sha256:" + "a" * 64, "10.45.1j", True),
    ("gnzsnz/ib-gateway:10.30.1a", "", False),
    # A floor given with a digest is read by its tag, not by the digest's hex.
    ("gnzsnz/ib-gateway:10.45.1j", "gnzsnz/ib-gateway:10.45.1j@sha256:" + "f" * 64, False),
    ("gnzsnz/ib-gateway:10.45.1i", "gnzsnz/ib-gateway:10.45.1j@sha256:" + "f" * 64, True),
    ("gnzsnz/ib-gateway:10.45.1i@sha256:" + "b" * 64, "localhost:5000/ib-gateway:10.45.1j", True),
])
def test_an_image_below_the_floor_is_refused_naming_the_instance(plugin, image, floor, refused):
    errors = plugin.image_floor_errors([{"name": "paper", "image": image}], floor)
    assert errors == ([f"ib_gateway_instances[paper].image: a version tag at or above ib_gateway_image_floor "
                       f"{floor} (got '{image}')."] if refused else [])


@pytest.mark.parametrize("floor", ["stable", "gnzsnz/ib-gateway@sha256:" + "1" * 64, "localhost:5000/gw"])
def test_a_floor_that_is_no_version_is_refused(plugin, floor):
    assert plugin.image_floor_errors([{"name": "paper", "image": "i:10.45.1j"}], floor) == [
        f"ib_gateway_image_floor: a version such as 10.45.1j (got '{floor}')."]


def test_the_images_of_an_upgrade_replace_only_the_named_instances(plugin):
    instances = [good_instance(), good_instance(**PAPER)]
    replaced = plugin.with_images(instances, {"paper": "gnzsnz/ib-gateway:10.50.1d"})
    assert [i["image"] for i in replaced] == [instances[0]["image"], "gnzsnz/ib-gateway:10.50.1d"]
    assert plugin.with_images(instances, {}) == instances


def _slurped(name: str, **recorded: str) -> dict:
    return {"item": {"name": name}, "content": base64.b64encode(json.dumps(recorded).encode()).decode()}


def test_a_rollback_point_pins_its_digest_and_retags_its_id(plugin):
    digest = "sha256:" + "c" * 64
    points = plugin.rollback_points([
        _slurped("paper", reference="gnzsnz/ib-gateway:10.45.1j", image_id="sha256:" + "1" * 64, digest=digest),
        _slurped("live", reference="ibgw-lab/ib-gateway:standin-abc", image_id="sha256:" + "2" * 64, digest=""),
        _slurped("p2", reference=f"localhost:5000/gw@{digest}", image_id="sha256:" + "3" * 64, digest=digest)])
    assert points == [
        {"instance": "paper", "image_id": "sha256:" + "1" * 64, "tag": "gnzsnz/ib-gateway:10.45.1j",
         "reference": f"gnzsnz/ib-gateway:10.45.1j@{digest}"},
        {"instance": "live", "image_id": "sha256:" + "2" * 64, "tag": "ibgw-lab/ib-gateway:standin-abc",
         "reference": "ibgw-lab/ib-gateway:standin-abc"},
        {"instance": "p2", "image_id": "sha256:" + "3" * 64, "tag": "", "reference": f"localhost:5000/gw@{digest}"}]


def test_apprise_urls_a_heartbeat_and_repeats_that_apprise_and_the_checks_accept_pass(plugin):
    assert errors(plugin, [good_instance()], watchdog={
        **WATCHDOG, "ib_gateway_alert_urls": ["json://127.0.0.1:8080/hook", "ntfy://ibgw-alerts", "slack://T/B/C"],
        "ib_gateway_heartbeat_url": "https://hc-ping.example/5f1c", "ib_gateway_alert_repeat_interval": 0}) == []


def test_the_lifecycle_numbers_are_checked_against_their_ranges_all_at_once(plugin):
    values = {"ib_gateway_ready_timeout": 0, "ib_gateway_lock_timeout": 900, "ib_gateway_log_lines": "100001",
              "ib_gateway_probe_client_id": 2**31}
    assert plugin.number_errors(values) == [
        "ib_gateway_ready_timeout: a whole number of seconds from 1 to 86400 (got '0').",
        "ib_gateway_log_lines: a whole number of lines from 1 to 100000 (got '100001').",
        "ib_gateway_probe_client_id: a whole number from 0 to 2147483647 (got '2147483648').",
    ]
    assert plugin.number_errors({"ib_gateway_ready_timeout": 86400, "ib_gateway_probe_client_id": 0}) == []
