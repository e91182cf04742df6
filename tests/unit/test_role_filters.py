"""The ib_gateway role's filters: instances resolved, credentials sorted by name, never a value returned."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

PLUGIN = Path(__file__).parents[2] / "roles" / "ib_gateway" / "filter_plugins" / "ib_gateway_settings.py"
SECRET = "projects/p-12345/secrets/ibkr/versions/1"
PATTERN = r"^projects/[a-z0-9-]+/secrets/[A-Za-z0-9_-]+/versions/(latest|[1-9][0-9]*)$"


@pytest.fixture(scope="module")
def plugin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ib_gateway_settings", PLUGIN)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
