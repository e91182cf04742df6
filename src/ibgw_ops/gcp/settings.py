"""``gcp.yml``: the cloud settings of one deployment, checked completely before any API call.

Every refusal names the field (dotted path) and what is allowed, so a bad value never reaches the cloud.
``$IBGW_OPS_COMPUTE_ENDPOINT`` wins over gcp.yml's ``compute_endpoint`` (as gcloud's environment wins over its
configuration): both are checked, and the settings keep the value it overrode so the verbs can say so.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from ibgw_ops import environment, yaml_text
from ibgw_ops.errors import BadInput

SETTINGS_FILE = "gcp.yml"
ENDPOINT_ENV = "IBGW_OPS_COMPUTE_ENDPOINT"
DEBIAN_13 = "projects/debian-cloud/global/images/family/debian-13"
# Google's IAP TCP forwarding range: the only SSH source when SSH goes through IAP.
IAP_RANGE = "35.235.240.0/20"
# Cloud Run reserves addresses in blocks: its Direct VPC egress subnet must be at least this big.
CLOUD_RUN_MAX_PREFIX = 26
# A range wider than this is "the world" for an unauthenticated API.
WORLD_PREFIX = 8
# Where API clients may be without api.allow_public_sources: RFC 1918 and the shared address space (RFC 6598).
PRIVATE_SOURCES = tuple(ipaddress.IPv4Network(text) for text in
                        ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"))
NAT_IPS = ("static", "auto")

_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
_ZONE_SUFFIX = re.compile(r"^-[a-z]$")
_DEPLOYMENT = re.compile(r"^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$")
_MACHINE_TYPE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)+$")
_ACCOUNT = re.compile(r"^[a-z0-9-]+@[a-z0-9-]+\.(iam\.gserviceaccount\.com|developer\.gserviceaccount\.com)$")
_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")

_SECTIONS: dict[str, tuple[str, ...]] = {
    "": ("project", "region", "zone", "deployment", "compute_endpoint", "network", "vm", "api", "ssh"),
    "network": ("subnet_cidr", "cloud_run_subnet_cidr"),
    "vm": ("machine_type", "disk_size_gb", "image", "internal_ip", "public_ip", "nat_ip", "service_account"),
    "api": ("ports", "source_ranges", "allow_public_sources"),
    "ssh": ("via", "user", "admin_ranges", "private_key_file"),
}


@dataclass(frozen=True)
class GcpSettings:
    """One deployment's cloud settings, every default applied and every value checked."""

    project: str
    region: str
    zone: str
    deployment: str
    compute_endpoint: str
    # gcp.yml's compute_endpoint when $IBGW_OPS_COMPUTE_ENDPOINT replaced it with another value, else "".
    compute_endpoint_overridden: str
    subnet_cidr: str
    cloud_run_subnet_cidr: str
    machine_type: str
    disk_size_gb: int
    image: str
    internal_ip: str
    public_ip: bool
    # Cloud NAT's addresses with vm.public_ip false: "static" (one reserved for it) or "auto"; "" without NAT.
    nat_ip: str
    service_account: str
    api_ports: tuple[int, ...]
    api_source_ranges: tuple[str, ...]
    api_allow_public_sources: bool
    ssh_via: str
    ssh_user: str
    ssh_admin_ranges: tuple[str, ...]
    ssh_private_key_file: str


def load(directory: Path) -> GcpSettings:
    """Read ``<directory>/gcp.yml`` and check it; raise :class:`BadInput` naming the first bad field."""
    path = directory / SETTINGS_FILE
    if not path.is_file():
        raise BadInput(SETTINGS_FILE, f"{path} does not exist",
                       "an inventory folder holding gcp.yml (see inventory/gcp/ for an example)")
    text = yaml_text.decode(path, path.read_bytes(), SETTINGS_FILE, "a UTF-8 text file")
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise yaml_text.invalid(path, text, exc, SETTINGS_FILE, "a YAML mapping") from None
    return parse(document)


def parse(document: Any) -> GcpSettings:
    """Check a parsed ``gcp.yml`` document and apply the defaults."""
    root = _section(document, "")
    project = _required(root, "project", _PROJECT, "a project id: 6-30 lowercase letters, digits, dashes")
    region = _required(root, "region", _REGION, "a region such as us-east4")
    zone = _required(root, "zone", re.compile(".+"), f"a zone of region {region}, such as {region}-a")
    if not (zone.startswith(region) and _ZONE_SUFFIX.match(zone[len(region):])):
        raise BadInput("zone", f"'{zone}' is not in region '{region}'", f"{region}-a, {region}-b, {region}-c, …")
    deployment = _text(root, "deployment", "ibgw", _DEPLOYMENT,
                       "1-20 lowercase letters, digits and dashes, starting with a letter")
    configured = _endpoint(_text(root, "compute_endpoint", "", None, ENDPOINT_ALLOWED), "compute_endpoint")
    overriding = environment.value(ENDPOINT_ENV)
    endpoint = _endpoint(overriding or "", f"${ENDPOINT_ENV}") or configured

    network = _section(root.get("network"), "network")
    subnet = _network(_text(network, "network.subnet_cidr", "10.20.0.0/24", None, ""), "network.subnet_cidr", 29)
    run_text = _text(network, "network.cloud_run_subnet_cidr", "10.20.1.0/26", None, "")
    run_subnet = _network(run_text, "network.cloud_run_subnet_cidr", CLOUD_RUN_MAX_PREFIX) if run_text else None
    if run_subnet and run_subnet.overlaps(subnet):
        raise BadInput("network.cloud_run_subnet_cidr", f"{run_subnet} overlaps network.subnet_cidr {subnet}",
                       "a range disjoint from the gateway subnet")

    vm = _section(root.get("vm"), "vm")
    internal_ip = _internal_ip(vm, subnet)
    public_ip = vm.get("public_ip", True)
    if not isinstance(public_ip, bool):
        raise BadInput("vm.public_ip", f"'{public_ip}' is not true or false",
                       "true (static external IP), false (no external IP; Cloud NAT for outbound traffic)")
    nat_ip = _nat_ip(vm, public_ip)
    disk = vm.get("disk_size_gb", 20)
    if not isinstance(disk, int) or isinstance(disk, bool) or not 10 <= disk <= 2000:
        raise BadInput("vm.disk_size_gb", f"'{disk}' is not a disk size", "a whole number of GB from 10 to 2000")

    api = _section(root.get("api"), "api")
    ports = _ports(api.get("ports", [4001, 4002]))
    sources = _ranges(api, "api.source_ranges", [str(run_subnet)] if run_subnet else [])
    if not sources:
        raise BadInput("api.source_ranges", "no source may reach the gateway API",
                       "the Cloud Run egress ranges (CIDRs), or set network.cloud_run_subnet_cidr")
    allow_public = _flag(api, "api.allow_public_sources")
    if not allow_public:
        _private(sources)

    ssh = _section(root.get("ssh"), "ssh")
    via = _text(ssh, "ssh.via", "iap", re.compile(r"^(iap|external)$"), "iap, external")
    admin_ranges = _ranges(ssh, "ssh.admin_ranges", [])
    if via == "external" and not admin_ranges:
        raise BadInput("ssh.admin_ranges", "SSH to the external IP needs the admin ranges it is allowed from",
                       "CIDRs of the operators' networks")
    if via == "external" and not public_ip:
        raise BadInput("ssh.via", "'external' needs vm.public_ip: true", "iap (or set vm.public_ip: true)")

    return GcpSettings(
        project=project, region=region, zone=zone, deployment=deployment, compute_endpoint=endpoint,
        compute_endpoint_overridden=configured if configured != endpoint else "",
        subnet_cidr=str(subnet), cloud_run_subnet_cidr=str(run_subnet) if run_subnet else "",
        machine_type=_text(vm, "vm.machine_type", "e2-medium", _MACHINE_TYPE, "a machine type such as e2-medium"),
        disk_size_gb=disk,
        image=_text(vm, "vm.image", DEBIAN_13, re.compile(r"^projects/[a-z0-9-]+/global/images/\S+$"),
                    f"an image or image family path such as {DEBIAN_13}"),
        internal_ip=internal_ip, public_ip=public_ip, nat_ip=nat_ip,
        service_account=_text(vm, "vm.service_account", "", _ACCOUNT,
                              "empty (no service account) or a service account e-mail"),
        api_ports=ports, api_source_ranges=tuple(sources), api_allow_public_sources=allow_public,
        ssh_via=via,
        ssh_user=_required(ssh, "ssh.user", _USER,
                           "your OS Login user name (gcloud compute os-login describe-profile)"),
        ssh_admin_ranges=tuple(admin_ranges),
        ssh_private_key_file=_text(ssh, "ssh.private_key_file", "~/.ssh/google_compute_engine", re.compile(r"^\S+$"),
                                   "the path of the SSH key registered with OS Login"),
    )


ENDPOINT_ALLOWED = "empty (the default endpoint), or https://host[:port][/path] (http:// only for a local fake)"


def _endpoint(value: str, field: str) -> str:
    """The endpoint URL without a trailing slash (or ""); refused unless a plain http(s) URL a client can use."""
    if value and not _is_endpoint(value):
        raise BadInput(field, f"'{value}' is not an endpoint URL", ENDPOINT_ALLOWED)
    return value.rstrip("/")


def _is_endpoint(value: str) -> bool:
    """A scheme, a host and a valid port; no user, password, query or fragment (nothing secret in a URL)."""
    split = urlsplit(value)
    try:
        split.port  # noqa: B018 - reading the port is what checks it
    except ValueError:
        return False
    return (split.scheme in ("http", "https") and bool(split.hostname) and split.username is None
            and not split.query and not split.fragment and not re.search(r"\s", value))


def _nat_ip(vm: Mapping[str, Any], public_ip: bool) -> str:
    """How Cloud NAT gets its address: only without an external IP, static unless told otherwise."""
    value = _text(vm, "vm.nat_ip", "", re.compile(r"^(static|auto)$"),
                  "static (an external address reserved for Cloud NAT: a fixed egress IP), auto (Google's, may change)")
    if public_ip and value:
        raise BadInput("vm.nat_ip", "applies only without an external IP (Cloud NAT)",
                       "leave it out, or set vm.public_ip: false")
    return "" if public_ip else value or "static"


def _flag(section: Mapping[str, Any], field: str) -> bool:
    value = section.get(field.rsplit(".", 1)[-1], False)
    if not isinstance(value, bool):
        raise BadInput(field, f"'{value}' is not true or false", "true, false")
    return value


def _private(sources: list[str]) -> None:
    """API clients come from private ranges: a public one is the internet, unless the operator says it is not."""
    for text in sources:
        if not any(ipaddress.IPv4Network(text).subnet_of(private) for private in PRIVATE_SOURCES):
            raise BadInput("api.source_ranges", f"{text} is not a private range",
                           f"ranges inside {', '.join(map(str, PRIVATE_SOURCES))}; "
                           "or set api.allow_public_sources: true")


def _section(value: Any, name: str) -> Mapping[str, Any]:
    """A mapping with only the known keys of its section."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise BadInput(name or SETTINGS_FILE, "is not a mapping", "key: value pairs")
    for key in value:
        if key not in _SECTIONS[name]:
            raise BadInput(f"{name}.{key}" if name else str(key), "is not a setting", _SECTIONS[name])
    return value


def _text(section: Mapping[str, Any], field: str, default: str, pattern: re.Pattern[str] | None,
          allowed: str) -> str:
    """The text at dotted ``field`` of ``section`` (or ``default``), matching ``pattern`` when not empty."""
    value = section.get(field.rsplit(".", 1)[-1], default)
    if not isinstance(value, str):
        raise BadInput(field, f"'{value}' is not text", allowed or None)
    if value and pattern is not None and not pattern.match(value):
        raise BadInput(field, f"'{value}' is not valid", allowed)
    return value


def _required(section: Mapping[str, Any], field: str, pattern: re.Pattern[str], allowed: str) -> str:
    value = _text(section, field, "", pattern, allowed)
    if not value:
        raise BadInput(field, "is missing", allowed)
    return value


def _network(text: str, field: str, max_prefix: int) -> ipaddress.IPv4Network:
    try:
        network = ipaddress.IPv4Network(text)
    except ValueError:
        raise BadInput(field, f"'{text}' is not an IPv4 network", "a CIDR such as 10.20.0.0/24") from None
    if not network.is_private or network.prefixlen > max_prefix or network.prefixlen < WORLD_PREFIX:
        raise BadInput(field, f"{network} is not usable", f"a private range from /{WORLD_PREFIX} to /{max_prefix}")
    return network


def _internal_ip(vm: Mapping[str, Any], subnet: ipaddress.IPv4Network) -> str:
    # GCE keeps the network, gateway, second-to-last and broadcast addresses of a subnet for itself.
    usable = list(subnet.hosts())[1:-1]
    text = vm.get("internal_ip") or str(usable[min(8, len(usable) - 1)])
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise BadInput("vm.internal_ip", f"'{text}' is not an IPv4 address", f"an address in {subnet}") from None
    if address not in usable:
        raise BadInput("vm.internal_ip", f"{address} is not a usable address of network.subnet_cidr {subnet}",
                       f"{usable[0]} to {usable[-1]}")
    return str(address)


def _ports(value: Any) -> tuple[int, ...]:
    allowed = "a list of distinct TCP ports from 1024 to 65535, one per gateway instance"
    if not isinstance(value, list) or not value:
        raise BadInput("api.ports", f"'{value}' is not a list of ports", allowed)
    for port in value:
        if not isinstance(port, int) or isinstance(port, bool) or not 1024 <= port <= 65535:
            raise BadInput("api.ports", f"'{port}' is not a port", allowed)
    if len(set(value)) != len(value):
        raise BadInput("api.ports", f"{value} repeats a port", allowed)
    return tuple(value)


def _ranges(section: Mapping[str, Any], field: str, default: list[str]) -> list[str]:
    value = section.get(field.rsplit(".", 1)[-1], default)
    allowed = f"a list of IPv4 CIDRs from /{WORLD_PREFIX} to /32"
    if not isinstance(value, list):
        raise BadInput(field, f"'{value}' is not a list", allowed)
    ranges = []
    for text in value:
        try:
            network = ipaddress.IPv4Network(str(text))
        except ValueError:
            raise BadInput(field, f"'{text}' is not an IPv4 CIDR", allowed) from None
        if network.prefixlen < WORLD_PREFIX:
            raise BadInput(field, f"{network} opens the port to the world (wider than /{WORLD_PREFIX}; the IB API "
                           "has no authentication)", allowed)
        ranges.append(str(network))
    return ranges
