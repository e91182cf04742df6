import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ibgw_ops.errors import BadInput, ExitCode
from ibgw_ops.gcp import settings
from ibgw_ops.paths import data_dir

EXAMPLE = yaml.safe_load((data_dir() / "inventory" / "gcp" / "gcp.yml").read_text())


def changed(path: str, value: object) -> dict:
    document = copy.deepcopy(EXAMPLE)
    *parents, key = path.split(".")
    section = document
    for parent in parents:
        section = section.setdefault(parent, {})
    if value is None:
        section.pop(key, None)
    else:
        section[key] = value
    return document


def test_the_example_parses_with_its_defaults():
    parsed = settings.parse(EXAMPLE)
    assert (parsed.project, parsed.region, parsed.zone) == ("my-trading-project", "us-east4", "us-east4-a")
    assert parsed.api_source_ranges == ("10.20.1.0/26",)
    assert parsed.api_ports == (4001, 4002)
    assert parsed.image.endswith("family/debian-13")
    assert parsed.machine_type == "e2-medium"


def test_the_internal_ip_defaults_to_the_subnets_tenth_address():
    assert settings.parse(changed("vm.internal_ip", None)).internal_ip == "10.20.0.10"


BAD = [
    ("project", None, "project", "is missing"),
    ("project", "My_Project", "project", "lowercase"),
    ("zone", "us-west1-a", "zone", "not in region 'us-east4'"),
    ("zone", "us-east4", "zone", "not in region"),
    ("region", "useast", "region", "us-east4"),
    ("deployment", "Bad Name", "deployment", "lowercase"),
    ("network.subnet_cidr", "10.20.1.0/24", "network.cloud_run_subnet_cidr", "overlaps"),
    ("network.subnet_cidr", "8.8.8.0/24", "network.subnet_cidr", "private"),
    ("network.cloud_run_subnet_cidr", "10.20.1.0/28", "network.cloud_run_subnet_cidr", "/26"),
    ("network.cloud_run_subnet_cidr", "", "api.source_ranges", "no source may reach"),
    ("api.source_ranges", ["0.0.0.0/0"], "api.source_ranges", "opens the port to the world"),
    ("api.source_ranges", ["10.0.0.0/33"], "api.source_ranges", "not an IPv4 CIDR"),
    ("api.ports", [4001, 4001], "api.ports", "repeats"),
    ("api.ports", [22], "api.ports", "1024 to 65535"),
    ("vm.internal_ip", "10.20.0.1", "vm.internal_ip", "not a usable address"),
    ("vm.internal_ip", "10.99.0.10", "vm.internal_ip", "not a usable address"),
    ("vm.public_ip", "yes", "vm.public_ip", "true or false"),
    ("vm.disk_size_gb", 5, "vm.disk_size_gb", "10 to 2000"),
    ("vm.service_account", "someone@gmail.com", "vm.service_account", "service account"),
    ("vm.machine_type", "big box", "vm.machine_type", "e2-medium"),
    ("vm.colour", "blue", "vm.colour", "machine_type"),
    ("ssh.via", "telnet", "ssh.via", "iap, external"),
    ("ssh.via", "external", "ssh.admin_ranges", "admin ranges"),
    ("ssh.admin_ranges", ["0.0.0.0/0"], "ssh.admin_ranges", "world"),
    ("ssh.user", None, "ssh.user", "is missing"),
    ("compute_endpoint", "not a url", "compute_endpoint", "URL"),
    ("compute_endpoint", "ftp://compute.example.com", "compute_endpoint", "https://host[:port]"),
    ("compute_endpoint", "https://user:secret@compute.example.com", "compute_endpoint", "not an endpoint URL"),
    ("compute_endpoint", "https://compute.example.com:99999", "compute_endpoint", "not an endpoint URL"),
    ("api.source_ranges", ["203.0.113.0/28"], "api.source_ranges", "203.0.113.0/28 is not a private range"),
    ("api.source_ranges", ["100.0.0.0/9"], "api.source_ranges", "api.allow_public_sources: true"),
    ("api.source_ranges", ["10.0.0.0/7"], "api.source_ranges", "CIDRs from /8 to /32"),
    ("api.allow_public_sources", "yes", "api.allow_public_sources", "true, false"),
    ("vm.nat_ip", "fixed", "vm.nat_ip", "static (an external address reserved for Cloud NAT"),
    ("vm.nat_ip", "static", "vm.nat_ip", "only without an external IP"),
    ("network", "10.0.0.0/8", "network", "mapping"),
]


@pytest.mark.parametrize(("path", "value", "field", "fragment"), BAD, ids=[f"{b[0]}={b[1]}" for b in BAD])
def test_bad_settings_name_the_field_and_what_is_allowed(path, value, field, fragment):
    with pytest.raises(BadInput) as refused:
        settings.parse(changed(path, value))
    assert refused.value.field == field
    assert fragment in str(refused.value)
    assert refused.value.code == ExitCode.BAD_INPUT


def test_external_ssh_needs_a_public_ip():
    document = changed("ssh.via", "external")
    document["ssh"]["admin_ranges"] = ["203.0.113.0/24"]
    document["vm"]["public_ip"] = False
    with pytest.raises(BadInput, match=r"ssh\.via"):
        settings.parse(document)


def test_a_missing_or_broken_file_is_bad_input(tmp_path: Path):
    with pytest.raises(BadInput, match=r"gcp\.yml: .* does not exist"):
        settings.load(tmp_path)
    (tmp_path / "gcp.yml").write_text("project: demo\nzone: [unclosed\n")
    with pytest.raises(BadInput, match=r"gcp\.yml: .*gcp\.yml, line 3, column 1: not valid YAML"):
        settings.load(tmp_path)
    (tmp_path / "gcp.yml").write_bytes(b"project: d\xe9mo\n")
    with pytest.raises(BadInput, match=r"gcp\.yml: .*gcp\.yml: byte 10 is not UTF-8 .*allowed: a UTF-8 text file"):
        settings.load(tmp_path)


def test_the_endpoint_can_come_from_the_environment(monkeypatch):
    monkeypatch.setenv(settings.ENDPOINT_ENV, "http://127.0.0.1:9/")
    assert settings.parse(EXAMPLE).compute_endpoint == "http://127.0.0.1:9"


def test_the_environment_wins_over_gcp_yml_and_says_what_it_overrode(monkeypatch):
    document = changed("compute_endpoint", "https://compute-private.example.com")
    assert settings.parse(document).compute_endpoint_overridden == ""
    monkeypatch.setenv(settings.ENDPOINT_ENV, "http://127.0.0.1:9")
    parsed = settings.parse(document)
    assert parsed.compute_endpoint == "http://127.0.0.1:9"
    assert parsed.compute_endpoint_overridden == "https://compute-private.example.com"
    monkeypatch.setenv(settings.ENDPOINT_ENV, "https://compute-private.example.com/")
    assert settings.parse(document).compute_endpoint_overridden == ""


def test_a_bad_endpoint_in_the_environment_is_refused_by_its_name(monkeypatch):
    monkeypatch.setenv(settings.ENDPOINT_ENV, "file:///etc/passwd")
    with pytest.raises(BadInput) as refused:
        settings.parse(EXAMPLE)
    assert refused.value.field == "$IBGW_OPS_COMPUTE_ENDPOINT"
    assert "https://host[:port]" in str(refused.value)
    monkeypatch.setenv(settings.ENDPOINT_ENV, "http://127.0.0.1:9")
    with pytest.raises(BadInput, match=r"^compute_endpoint: 'not a url'"):
        settings.parse(changed("compute_endpoint", "not a url"))


def test_a_slash_8_is_the_widest_source_and_public_ones_need_saying_so():
    assert settings.parse(changed("api.source_ranges", ["10.0.0.0/8"])).api_source_ranges == ("10.0.0.0/8",)
    assert settings.parse(changed("api.source_ranges", ["100.64.0.0/10", "192.168.4.0/24"])).api_source_ranges
    document = changed("api.source_ranges", ["203.0.113.0/28"])
    document["api"]["allow_public_sources"] = True
    parsed = settings.parse(document)
    assert parsed.api_source_ranges == ("203.0.113.0/28",) and parsed.api_allow_public_sources is True
    document["api"]["source_ranges"] = ["0.0.0.0/0"]
    with pytest.raises(BadInput, match="opens the port to the world"):
        settings.parse(document)


def test_cloud_nat_gets_a_static_address_unless_told_otherwise():
    assert settings.parse(EXAMPLE).nat_ip == ""
    assert settings.parse(changed("vm.public_ip", False)).nat_ip == "static"
    document = changed("vm.public_ip", False)
    document["vm"]["nat_ip"] = "auto"
    assert settings.parse(document).nat_ip == "auto"


@pytest.mark.parametrize("verb", [["provision", "--plan"], ["destroy", "--yes"]])
def test_bad_settings_are_refused_before_the_google_libraries_load(tmp_path: Path, verb: list[str]):
    bad = copy.deepcopy(EXAMPLE)
    bad["zone"] = "Moon-1"
    (tmp_path / "gcp.yml").write_text(yaml.safe_dump(bad))
    (tmp_path / "hosts.yml").write_text("all: {}\n")
    script = ("import sys; from ibgw_ops.cli import main; code = main(sys.argv[1:]); "
              "print(code, any(name.startswith(('google.cloud', 'google.api_core')) for name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", script, "-i", str(tmp_path), *verb],
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.stdout.split() == [str(int(ExitCode.BAD_INPUT)), "False"], result.stdout + result.stderr
    assert "zone" in result.stderr


def test_a_missing_google_application_credentials_file_is_named_once_before_any_call(monkeypatch, tmp_path: Path):
    from ibgw_ops.gcp.compute import ComputeApi  # noqa: PLC0415 - the Google libraries, for this test only

    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(BadInput, match=r"GOOGLE_APPLICATION_CREDENTIALS: .*missing\.json is not a file"):
        ComputeApi(settings.parse(EXAMPLE))
    (tmp_path / "missing.json").write_text("{}")
    ComputeApi(settings.parse(EXAMPLE))
