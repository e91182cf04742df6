"""The bad-input table: each invalid argument, environment value or inventory setting exits 2 (BAD_INPUT) with a
message naming the field and the allowed values, and leaves the lab VM exactly as it was."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from ibgw_ops.errors import ExitCode
from ibgw_ops.paths import data_dir
from tests.support.lab import LAB_PREFIX, Lab

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

# Everything a changed host would show, in one round trip: the gateways' files (mode, owner, size, mtime and
# content; folders by mode and owner), the containers, and the units (the API firewall, the dead-man switch and
# watchdog timers; not the watchdog's tick, which runs and ends every interval; name, load and active state only,
# since a timer's sub-state and the column widths change on their own). The tick's own traces are left out too: the
# alert spool's lock file and the bytecode Python writes beside the on-host code, with the folders' mtimes.
TICK_TRACES = "\\( -name __pycache__ -o -name .lock \\) -prune"
SNAPSHOT = (
    f"find /opt/ibgw {TICK_TRACES} -o -type d -printf '%p %m %U\\n' -o -printf '%p %m %U %s %T@\\n' | sort; "
    f"find /opt/ibgw {TICK_TRACES} -o -type f -exec sha256sum {{}} + | sort; "
    "docker ps -a --format '{{.Names}} {{.ID}} {{.State}}' | sort; "
    "systemctl list-units --all --no-legend --plain 'ibgw-*' | grep -v 'ibgw-watchdog@.*[.]service' "
    "| awk '{print $1, $2, $3}'; true"
)
TMP = "{tmp}"
DAYS = "mon, tue, wed, thu, fri, sat, sun"
TARGETS = "allowed: all, live, paper, or an instance name"
SECONDS = "is not a whole number from 1 to 86400"
LINES = "is not a whole number from 1 to 100000"
CLIENT_IDS = "is not a whole number from 0 to 2147483647"
# The roles VM the table runs on, the one host of its inventory.
LAB_HOST = f"{LAB_PREFIX}-roles"
BOTH_MODES = [{"name": "live", "mode": "live"}, {"name": "paper", "mode": "paper"}]
WINDOW = {"time_zone": "America/New_York", "days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:30",
          "end": "16:00"}


def paper(**settings: Any) -> list[dict[str, Any]]:
    """The default instances with settings added to paper."""
    return [BOTH_MODES[0], {**BOTH_MODES[1], **settings}]


def live(**settings: Any) -> list[dict[str, Any]]:
    """The default instances with settings added to live."""
    return [{**BOTH_MODES[0], **settings}, BOTH_MODES[1]]


@dataclass(frozen=True)
class Case:
    """One invalid input: the CLI call, what the message must name and allow, and what the case sets up."""

    args: tuple[str, ...]
    field: str
    allowed: str | tuple[str, ...]
    host_vars: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    stdin: str | None = None


def case(case_id: str, args: str | tuple[str, ...], field: str, allowed: str | tuple[str, ...],
         *, marks: Any = (), **settings: Any) -> Any:
    """A table row; ``args`` as one string splits on spaces."""
    argv = tuple(args.split()) if isinstance(args, str) else args
    return pytest.param(Case(argv, field, allowed, **settings), id=case_id, marks=marks)


# gcp.yml of each cloud row: the example with these sections changed, in {tmp}/<row id>/.
GCP_SETTINGS: dict[str, dict[str, dict[str, Any]]] = {}
# A local port nothing listens on: a row whose settings were wrongly accepted fails with 3, never reaches Google.
NO_COMPUTE = {"IBGW_OPS_COMPUTE_ENDPOINT": "http://127.0.0.1:9"}


def gcp(case_id: str, verb: str, changes: dict[str, dict[str, Any]], field: str, allowed: str | tuple[str, ...], *,
        env: dict[str, str] | None = None) -> Any:
    """A cloud row: ``verb`` on an inventory whose gcp.yml has ``changes``, refused before any API call."""
    GCP_SETTINGS[case_id] = changes
    return case(case_id, ("-i", f"{TMP}/{case_id}", *verb.split()), field, allowed, env={**NO_COMPUTE, **(env or {})})


CASES = [
    # Command-line arguments: refused by the parser or the verb before any playbook runs.
    case("up-Live", "up Live", "argument TARGET: 'Live' is not a target", TARGETS),
    case("down-dotdot-etc", "down ../etc", "argument TARGET: '../etc' is not a target", TARGETS),
    case("live-signin-bad-target", "live-signin live/../paper", "argument TARGET: 'live/../paper'", TARGETS),
    case("up-timeout-0", "up paper --timeout 0", "argument --timeout: '0'", SECONDS),
    case("paper-up-timeout-negative", ("paper-up", "--timeout", "-5"), "argument --timeout: '-5'", SECONDS),
    case("live-signin-timeout-0", "live-signin --timeout 0", "argument --timeout: '0'", SECONDS),
    case("logs-n-x", "logs -n x", "argument -n/--lines: 'x'", LINES),
    case("paper-run-without-cmd", "paper-run", "CMD: no command given",
         "allowed: paper-run [options] -- CMD [ARGS...]"),
    case("paper-run-dashdash-without-cmd", "paper-run --", "CMD: no command given",
         "allowed: paper-run [options] -- CMD [ARGS...]"),
    case("paper-run-client-id-negative", "paper-run --client-id -3 -- true", "argument --client-id: '-3'", CLIENT_IDS),
    case("restart-hard-without-terminal-or-yes", "restart live --hard", "--yes: a hard restart asks for confirmation",
         "(allowed: --yes)", stdin=""),
    case("down-unknown-option", "down paper --bogus", "unrecognized arguments: --bogus", "[--force]"),
    case("unknown-verb", "frobnicate", "argument VERB: invalid choice: 'frobnicate'",
         ("choose from", "paper-run", "live-signin")),
    case("probe-port-99999", "probe 10.0.0.5:99999", "argument HOST:PORT: '10.0.0.5:99999'", "a port in 1-65535"),
    case("live-signin-timeout-abc", "live-signin --timeout abc", "argument --timeout: 'abc'", SECONDS),
    case("logs-n-0", "logs -n 0", "argument -n/--lines: '0'", LINES),
    case("status-dotdot", "status ../x", "argument TARGET: '../x' is not a target", TARGETS),
    case("down-without-target", "down", "the following arguments are required: TARGET", "usage: ibgw-ops down"),
    case("restart-without-target", "restart", "the following arguments are required: TARGET",
         "usage: ibgw-ops restart"),
    case("paper-run-client-id-abc", "paper-run --client-id abc -- true", "argument --client-id: 'abc'", CLIENT_IDS),
    case("probe-without-port", "probe nohost", "argument HOST:PORT: 'nohost'", "a port in 1-65535"),
    case("probe-port-0", "probe 10.0.0.5:0", "argument HOST:PORT: '10.0.0.5:0'", "a port in 1-65535"),
    case("probe-port-abc", "probe 10.0.0.5:abc", "argument HOST:PORT: '10.0.0.5:abc'", "a port in 1-65535"),
    case("paper-down-unknown-option", "paper-down --bogus", "unrecognized arguments: --bogus",
         "usage: ibgw-ops paper-down"),
    case("paper-run-timeout-0", "paper-run --timeout 0 -- true", "argument --timeout: '0'", SECONDS),
    case("hosts-extra-argument", "hosts extra", "unrecognized arguments: extra", "usage: ibgw-ops hosts"),
    case("ssh-unknown-option", "ssh --bogus", "unrecognized arguments: --bogus", "usage: ibgw-ops ssh"),
    case("lab-unknown-action", "lab frob", "argument ACTION: invalid choice: 'frob'", ("'up'", "'ssh'")),
    case("status-unknown-option", "status --json --bogus", "unrecognized arguments: --bogus",
         "usage: ibgw-ops status"),
    # The environment: checked before any playbook runs.
    case("alert-webhook-file-url", "up paper", "IBGW_OPS_ALERT_WEBHOOK: not an http(s) URL",
         "allowed: https://host/path, http://host:port/path", env={"IBGW_OPS_ALERT_WEBHOOK": "file:///etc/passwd"}),
    case("alert-webhook-without-host", "up paper", "IBGW_OPS_ALERT_WEBHOOK: not an http(s) URL with a host",
         "allowed: https://host/path, http://host:port/path", env={"IBGW_OPS_ALERT_WEBHOOK": "https:///hook"}),
    case("alert-timeout-soon", "up paper", "IBGW_OPS_ALERT_TIMEOUT: 'soon' is not a number of seconds",
         "allowed: more than 0, at most 60",
         env={"IBGW_OPS_ALERT_WEBHOOK": "https://alerts.example.invalid/hook", "IBGW_OPS_ALERT_TIMEOUT": "soon"}),
    case("alert-timeout-61", "up paper", "IBGW_OPS_ALERT_TIMEOUT: '61'", "allowed: more than 0, at most 60",
         env={"IBGW_OPS_ALERT_WEBHOOK": "https://alerts.example.invalid/hook", "IBGW_OPS_ALERT_TIMEOUT": "61"}),
    case("inventory-env-missing", "up paper", "IBGW_OPS_INVENTORY: {tmp}/missing does not exist",
         "allowed: an inventory file or folder", env={"IBGW_OPS_INVENTORY": f"{TMP}/missing"}),
    case("inventory-flag-missing", ("-i", f"{TMP}/missing", "up", "paper"),
         "--inventory: {tmp}/missing does not exist", "allowed: an inventory file or folder"),
    case("inventory-without-gateways", ("-i", f"{TMP}/no-gateways.yml", "up", "paper"),
         "inventory: {tmp}/no-gateways.yml has no host in group ibgw_gateways",
         "allowed: an inventory like the lab's: hosts under ibgw_gateways"),
    case("limit-matches-nothing", "up paper --limit nosuch", "--limit: 'nosuch' matches no host of group ibgw_gateways",
         f"allowed: a host name, group or Ansible pattern over that group's hosts: {LAB_HOST})"),
    # Inventory settings: refused by the roles' checks (argument specs, validate*.yml, credentials.yml, the
    # protected window module), before any task that changes the host.
    case("instances-duplicate-name", "deploy", "ib_gateway_instances[].name:",
         ("names unique, 1-31 lowercase letters", "got ['live', 'live']"),
         host_vars={"ib_gateway_instances": [BOTH_MODES[0], {"name": "live", "mode": "paper", "api_port": 4003,
                                                              "vnc_port": 5902}]}),
    case("instances-bad-name", "deploy", "ib_gateway_instances[].name:",
         ("1-31 lowercase letters, digits or dashes, starting with a letter", "'Live_1'"),
         host_vars={"ib_gateway_instances": [{"name": "Live_1", "mode": "live"}, BOTH_MODES[1]]}),
    case("instances-unknown-mode", "deploy", "value of mode",
         ("must be one of: live, paper, got: demo", "found in ib_gateway_instances"),
         host_vars={"ib_gateway_instances": [BOTH_MODES[0], {"name": "demo", "mode": "demo"}]}),
    case("api-port-70000", "deploy", "ib_gateway_instances[].api_port / vnc_port:",
         ("each must be 1-65535 and used once", "70000"), host_vars={"ib_gateway_instances": paper(api_port=70000)}),
    case("paper-restart-policy-always", "deploy", "ib_gateway_instances[paper].restart_policy:",
         'a paper instance must use "no"', host_vars={"ib_gateway_instances": paper(restart_policy="always")}),
    case("restart-policy-sometimes", "deploy", "value of restart_policy",
         ("must be one of: no, on-failure, unless-stopped, always, got: sometimes", "found in ib_gateway_instances"),
         host_vars={"ib_gateway_instances": live(restart_policy="sometimes")}),
    case("image-latest", "deploy", "ib_gateway_instances[live].image (default ib_gateway_image):",
         ("pinned to a version tag (repository:10.45.1j) or a digest", "floating tags latest/stable are refused"),
         host_vars={"ib_gateway_image": "x:latest"}),
    case("bind-address-10.0.0.300", "deploy",
         "ib_gateway_instances[live].bind_address (default ib_gateway_bind_address)",
         "an IPv4 address, 127.0.0.1 or the VM's internal IP", host_vars={"ib_gateway_bind_address": "10.0.0.300"}),
    case("time-zone-not-a-zone", "deploy", "ib_gateway_instances[live]: time_zone",
         ("a TZ name such as America/New_York", "'Not a zone!'"), host_vars={"ib_gateway_time_zone": "Not a zone!"}),
    case("auto-restart-time-25h", "deploy", "ib_gateway_instances[live].auto_restart_time:",
         ('"hh:mm AM" or "hh:mm PM" with a two-digit hour', "'25:00'"),
         host_vars={"ib_gateway_instances": live(auto_restart_time="25:00")}),
    case("auto-logoff-time-one-digit-hour", "deploy", "ib_gateway_instances[paper].auto_logoff_time:",
         ('"hh:mm AM" or "hh:mm PM" with a two-digit hour', "'9:30 PM'"),
         host_vars={"ib_gateway_instances": paper(auto_logoff_time="9:30 PM")}),
    case("max-lifetime-5", "deploy", "ib_gateway_instances[paper]:", ("max_lifetime 0 (off) or >= 60", "got 5"),
         host_vars={"ib_gateway_instances": paper(max_lifetime=5)}),
    case("watchdog-interval-negative", "deploy", "ib_gateway_watchdog_interval:",
         ("a whole number of seconds from 0 to 3600 (0 turns it off)", "got '-5'"),
         host_vars={"ib_gateway_watchdog_interval": -5}),
    case("alert-webhook-not-a-url", "deploy", "ib_gateway_alert_webhook:",
         ("an http(s) URL with a host", "the value is not shown"),
         host_vars={"ib_gateway_alert_webhook": "hooks.example.net/T0KEN"}),
    case("alert-urls-unknown-service", "deploy", "ib_gateway_alert_urls[1]: not a URL Apprise can use",
         ("slack://, tgram://, ntfy://", "the value is not shown"),
         host_vars={"ib_gateway_alert_urls": ["json://127.0.0.1:9/fine", "nope://T0KEN"]}),
    case("heartbeat-url-not-a-url", "deploy", "ib_gateway_heartbeat_url:",
         ("an http(s) URL with a host", "the value is not shown"),
         host_vars={"ib_gateway_heartbeat_url": "hc-ping.example/T0KEN"}),
    case("alert-repeat-interval-negative", "deploy", "ib_gateway_alert_repeat_interval:",
         ("a whole number of seconds from 0 to 604800 (0 turns it off)", "got '-5'"),
         host_vars={"ib_gateway_alert_repeat_interval": -5}),
    case("live-signin-paper", "live-signin paper", "TARGET: 'paper' selects paper instance(s)",
         ("paper-up or paper-run", "allowed: live")),
    case("paper-run-command-failed-code-2", "paper-run --command-failed-code 2 -- true",
         "argument --command-failed-code: '2' is not an exit code of a failed command", "allowed: 11-255"),
    case("inventory-group-vars-not-yaml", ("-i", f"{TMP}/broken-inventory", "paper-up"),
         "inventory: {tmp}/broken-inventory/group_vars/ibgw_gateways.yml, line 2, column 27: not valid YAML",
         ("line 2 reads", "ib_gateway_alert_timeout: 5", "allowed: UTF-8 text in YAML syntax")),
    case("stop-grace-period-30", "deploy", "ib_gateway_instances[live]:", ("stop_grace_period >= 90", "got 30"),
         host_vars={"ib_gateway_stop_grace_period": 30}),
    case("extra-env-tws-password", "deploy", "ib_gateway_instances[live].extra_env:",
         ("UPPER_CASE names of non-secret variables; no passwords", "TWS_PASSWORD"),
         host_vars={"ib_gateway_extra_env": {"TWS_PASSWORD": "hunter2"}}),
    # A zone the pattern allows but the zone database lacks: refused on the controller, before the VM is asked.
    case("protected-window-zone-on-mars", "down live", "BAD INPUT: ib_gateway_protected_window: {} or {time_zone:",
         ("an IANA name such as America/New_York", "'time_zone': 'Mars/Olympus'"),
         host_vars={"ib_gateway_protected_window": {**WINDOW, "time_zone": "Mars/Olympus"}}),
    case("time-zone-typo", "deploy", "ib_gateway_instances[live]: time_zone",
         ("a TZ name such as America/New_York", "'America/NewYork'"),
         host_vars={"ib_gateway_time_zone": "America/NewYork"}),
    case("instance-paper-with-mode-live", "deploy", "ib_gateway_instances[paper].mode: an instance named paper",
         ("must have mode paper (got 'live')", "such as live-2"),
         host_vars={"ib_gateway_instances": [BOTH_MODES[0], {"name": "paper", "mode": "live", "api_port": 4003,
                                                              "vnc_port": 5902}]}),
    case("protected-window-start-9h30", "down live", "ib_gateway_protected_window: {} or {time_zone:",
         ("start and end: 24-hour HH:MM", "'start': '9:30'"),
         host_vars={"ib_gateway_protected_window": {**WINDOW, "start": "9:30"}}),
    case("protected-window-days-monday", "down live", "ib_gateway_protected_window: {} or {time_zone:",
         (f"days: a list of {DAYS}", "'days': ['monday']"),
         host_vars={"ib_gateway_protected_window": {**WINDOW, "days": ["monday"]}}),
    case("signin-schedule-day-sunday", "up paper", "ib_gateway_signin_schedule: {day: one of",
         (DAYS, "'day': 'sunday'"),
         host_vars={"ib_gateway_signin_schedule": {"day": "sunday", "time": "17:00", "time_zone": "America/New_York"}}),
    case("maintenance-days-sunday", "deploy", "ib_gateway_ibkr_maintenance[0].days: 'sunday' is not a day",
         (DAYS, "allowed"),
         host_vars={"ib_gateway_ibkr_maintenance": [{"name": "IBKR's weekly reset", "time_zone": "America/New_York",
                                                     "days": ["sunday"], "start": "00:45", "end": "01:45"}]}),
    case("target-unknown-instance", "up demo", "ib_gateway_target: 'demo' matches no instance",
         "(allowed: all, live, paper)"),
    case("firewall-any-source", "deploy", "host_firewall_api_source_ranges: ['0.0.0.0/0']",
         ("would open the gateway API ports to every address", "Allowed: the Cloud Run egress subnet(s)"),
         host_vars={"host_firewall_api_source_ranges": ["0.0.0.0/0"]}),
    case("firewall-prefix-33", "deploy", "host_firewall_api_source_ranges:",
         ("IPv4 addresses or CIDRs a.b.c.d/n with n 1-32", "'10.8.0.0/33'"),
         host_vars={"host_firewall_api_source_ranges": ["10.8.0.0/33"]}),
    case("credentials-missing-instance", "deploy", "ib_gateway_credentials: instances ['paper']",
         "need user_id and password (or password_secret",
         host_vars={"ib_gateway_credentials_file": f"{TMP}/only-live-credentials.yml"}),
    case("credentials-file-missing", "deploy", "ib_gateway_credentials_file: '{tmp}/missing-credentials.yml'",
         "is not a file on the controller (an absolute path to a YAML file",
         host_vars={"ib_gateway_credentials_file": f"{TMP}/missing-credentials.yml"}),
    case("credentials-bad-secret-name", "deploy", "ib_gateway_credentials: paper.password_secret",
         "must be a Secret Manager version name, projects/<project id or number>/secrets/<secret id>/versions/",
         host_vars={"ib_gateway_credentials_file": f"{TMP}/bad-secret-credentials.yml"}),
    case("credentials-file-not-yaml", "deploy", "ib_gateway_credentials_file: '{tmp}/broken-credentials.yml' cannot "
         "be read as YAML", "holding ib_gateway_credentials",
         host_vars={"ib_gateway_credentials_file": f"{TMP}/broken-credentials.yml"}),
    case("credentials-vault-without-password", "deploy", "ib_gateway_credentials_file: '{tmp}/vault-credentials.yml'",
         ("is vault-encrypted and no vault password was given", "ANSIBLE_VAULT_PASSWORD_FILE="),
         host_vars={"ib_gateway_credentials_file": f"{TMP}/vault-credentials.yml"}),
    case("credentials-vault-wrong-password", "deploy", "ib_gateway_credentials_file: the vault password given did "
         "not decrypt '{tmp}/vault-credentials.yml'", ("give the password it was encrypted with",
                                                      "ANSIBLE_VAULT_PASSWORD_FILE=", "--ask-vault-pass"),
         host_vars={"ib_gateway_credentials_file": f"{TMP}/vault-credentials.yml"},
         env={"ANSIBLE_VAULT_PASSWORD_FILE": f"{TMP}/wrong-vault-password"}),
    case("credentials-file-mode-0644", "deploy", "ib_gateway_credentials_file: '{tmp}/open-credentials.yml' has mode "
         "0644", "allowed: 0600 or stricter", host_vars={"ib_gateway_credentials_file": f"{TMP}/open-credentials.yml"}),
    case("credentials-password-newline", "deploy", "ib_gateway_credentials: paper.password holds a control character",
         "allowed: printable characters only",
         host_vars={"ib_gateway_credentials_file": f"{TMP}/newline-credentials.yml"}),
    case("paper-run-client-id-of-the-probe", "paper-run --client-id 999 -- true",
         "ib_gateway_pipeline_client_id (paper-run --client-id): 999 is the readiness probe's client id",
         "allowed: a whole number of 0 or more other than 999"),
    case("paper-run-client-id-of-the-inventory-s-probe", "paper-run --client-id 77 -- true",
         "ib_gateway_pipeline_client_id (paper-run --client-id): 77 is the readiness probe's client id, "
         "ib_gateway_probe_client_id", "allowed: a whole number of 0 or more other than 77",
         host_vars={"ib_gateway_probe_client_id": 77}),
    case("vnc-unknown-instance", "vnc papr", "INSTANCE: 'papr' is not an instance of the inventory",
         "(allowed: live, paper)"),
    case("vnc-without-vnc-password", "vnc paper", "ib_gateway_credentials.paper.vnc_password: not set, so its VM "
         "serves no VNC", "allowed: a vnc_password (or vnc_password_secret) for paper"),
    case("vnc-local-port-0", "vnc paper --local-port 0", "argument --local-port: '0' is not a port",
         "allowed: 1-65535"),
    case("vnc-without-instance", "vnc", "the following arguments are required: INSTANCE", "usage: ibgw-ops vnc"),
    case("ask-vault-pass-without-terminal", "paper-down --ask-vault-pass",
         "--ask-vault-pass: no terminal to ask for the vault password", "ANSIBLE_VAULT_PASSWORD_FILE", stdin=""),
    case("vault-password-file-missing", "paper-down", "ANSIBLE_VAULT_PASSWORD_FILE: {tmp}/no-vault-pass is not a file",
         "or --ask-vault-pass at a terminal", env={"ANSIBLE_VAULT_PASSWORD_FILE": f"{TMP}/no-vault-pass"}),
    case("ssh-unknown-host", "ssh nosuch -- true", "HOST: 'nosuch' is not a host of ibgw_gateways", "allowed: "),
    case("restart-Live", "restart Live", "argument TARGET: 'Live' is not a target", TARGETS),
    case("status-bad-target", "status Paper!", "argument TARGET: 'Paper!' is not a target", TARGETS),
    case("logs-dotdot", "logs ../x", "argument TARGET: '../x' is not a target", TARGETS),
    case("paper-up-timeout-abc", "paper-up --timeout abc", "argument --timeout: 'abc'", SECONDS),
    case("restart-timeout-0", "restart live --timeout 0", "argument --timeout: '0'", SECONDS),
    case("gcp-yml-syntax-error", ("-i", f"{TMP}/gcp-broken-yaml", "provision", "--plan"),
         "gcp.yml: {tmp}/gcp-broken-yaml/gcp.yml, line 2, column 1: not valid YAML", "allowed: a YAML mapping",
         env=NO_COMPUTE),
    case("gcp-yml-not-utf8", ("-i", f"{TMP}/gcp-latin1", "provision", "--plan"),
         "gcp.yml: {tmp}/gcp-latin1/gcp.yml: byte 10 is not UTF-8", "allowed: a UTF-8 text file", env=NO_COMPUTE),
    # Cloud settings (gcp.yml and the environment): refused before the Google libraries load and before any call.
    gcp("gcp-api-source-public", "provision --plan", {"api": {"source_ranges": ["198.51.100.0/24"]}},
        "api.source_ranges: 198.51.100.0/24 is not a private range",
        ("10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10", "or set api.allow_public_sources: true")),
    gcp("gcp-allow-public-sources-yes", "provision", {"api": {"allow_public_sources": "yes"}},
        "api.allow_public_sources: 'yes' is not true or false", "(allowed: true, false)"),
    gcp("gcp-api-source-wider-than-8", "provision --plan", {"api": {"source_ranges": ["10.0.0.0/7"]}},
        "api.source_ranges: 10.0.0.0/7 opens the port to the world", "allowed: a list of IPv4 CIDRs from /8 to /32"),
    gcp("gcp-nat-ip-with-public-ip", "provision", {"vm": {"nat_ip": "static"}},
        "vm.nat_ip: applies only without an external IP", "allowed: leave it out, or set vm.public_ip: false"),
    gcp("gcp-nat-ip-fixed", "provision --plan", {"vm": {"public_ip": False, "nat_ip": "fixed"}},
        "vm.nat_ip: 'fixed' is not valid", ("static (an external address reserved for Cloud NAT", "auto")),
    gcp("gcp-endpoint-env-file-url", "destroy --yes", {}, "$IBGW_OPS_COMPUTE_ENDPOINT: 'file:///etc/passwd' is not "
        "an endpoint URL", "https://host[:port][/path]", env={"IBGW_OPS_COMPUTE_ENDPOINT": "file:///etc/passwd"}),
    gcp("gcp-application-credentials-missing", "provision --plan", {},
        "GOOGLE_APPLICATION_CREDENTIALS: {tmp}/missing.json is not a file",
        "or unset it to use 'gcloud auth application-default login'",
        env={"IBGW_OPS_COMPUTE_ENDPOINT": "https://127.0.0.1:9",
             "GOOGLE_APPLICATION_CREDENTIALS": f"{TMP}/missing.json"}),
    gcp("gcp-api-ports-without-paper-s", "provision --plan", {"api": {"ports": [4001]}},
        "api.ports: [4001] lacks the API port of instance paper 4002 (ib_gateway_instances[].api_port, default "
        "ib_gateway_mode_defaults.<mode>.api_port)", "allowed: [4001, 4002], the instances' API ports"),
    gcp("gcp-api-ports-one-unused", "provision", {"api": {"ports": [4001, 4002, 4010]}},
        "api.ports: [4001, 4002, 4010] opens [4010], which no instance uses", "allowed: [4001, 4002]"),
    gcp("gcp-endpoint-yml-with-password", "provision --plan", {"": {"compute_endpoint": "https://u:pw@compute.test"}},
        "compute_endpoint: 'https://u:pw@compute.test' is not an endpoint URL", "https://host[:port][/path]"),
    # Numbers outside their documented ranges (docs/cli.md).
    case("probe-client-id-negative", "probe 127.0.0.1:9 --client-id -1", "argument --client-id: '-1'", CLIENT_IDS),
    case("paper-run-client-id-2-31", "paper-run --client-id 2147483648 -- true",
         "argument --client-id: '2147483648'", CLIENT_IDS),
    case("probe-wait-nan", "probe 127.0.0.1:9 --wait nan", "argument --wait: 'nan'",
         "is not a number of seconds from 0 to 3600"),
    case("live-signin-timeout-a-day-and-a-second", "live-signin --timeout 86401", "argument --timeout: '86401'",
         SECONDS),
    case("logs-n-100001", "logs -n 100001", "argument -n/--lines: '100001'", LINES),
    case("inventory-ready-timeout-and-log-lines-0", "up paper",
         "ib_gateway_ready_timeout: a whole number of seconds from 1 to 86400 (got '0')",
         "ib_gateway_log_lines: a whole number of lines from 1 to 100000 (got '0')",
         host_vars={"ib_gateway_ready_timeout": 0, "ib_gateway_log_lines": 0}),
    case("inventory-probe-client-id-2-31", "status", "ib_gateway_probe_client_id: a whole number from 0 to "
         "2147483647 (got '2147483648')", "BAD INPUT", host_vars={"ib_gateway_probe_client_id": 2**31}),
    # Set but empty: refused, never a silent fallback (to the lab's inventory, no vault password, no alerts).
    case("inventory-env-empty", "up paper", "IBGW_OPS_INVENTORY: set but empty",
         "allowed: an inventory file or folder, or unset it", env={"IBGW_OPS_INVENTORY": ""}),
    case("vault-password-file-env-empty", "paper-down", "ANSIBLE_VAULT_PASSWORD_FILE: set but empty",
         "a file holding the vault password", env={"ANSIBLE_VAULT_PASSWORD_FILE": ""}),
    case("alert-webhook-empty", "up paper", "IBGW_OPS_ALERT_WEBHOOK: set but empty",
         "https://host/path", env={"IBGW_OPS_ALERT_WEBHOOK": " "}),
    case("alert-timeout-empty", "up paper", "IBGW_OPS_ALERT_TIMEOUT: set but empty", "more than 0, at most 60",
         env={"IBGW_OPS_ALERT_WEBHOOK": "https://alerts.example.invalid/hook", "IBGW_OPS_ALERT_TIMEOUT": ""}),
    case("state-dir-env-empty", "up paper", "IBGW_OPS_STATE_DIR: set but empty",
         "a folder for ibgw-ops' state", env={"IBGW_OPS_STATE_DIR": ""}),
    case("two-empty-variables-at-once", "up paper", "IBGW_OPS_INVENTORY, IBGW_OPS_ALERT_WEBHOOK: set but empty",
         ("IBGW_OPS_INVENTORY: an inventory file or folder", "IBGW_OPS_ALERT_WEBHOOK: https://host/path"),
         env={"IBGW_OPS_INVENTORY": "", "IBGW_OPS_ALERT_WEBHOOK": ""}),
    gcp("gcp-compute-endpoint-env-empty", "provision --plan", {}, "IBGW_OPS_COMPUTE_ENDPOINT: set but empty",
        "https://host[:port][/path]", env={"IBGW_OPS_COMPUTE_ENDPOINT": ""}),
    # Paths that are not what they must be, refused naming them before any host or cloud call.
    case("state-dir-a-file", "up paper", "IBGW_OPS_STATE_DIR: {tmp}/no-gateways.yml is not a folder",
         "a folder for ibgw-ops' state", env={"IBGW_OPS_STATE_DIR": f"{TMP}/no-gateways.yml"}),
    case("ssh-key-file-missing", "up paper", "inventory: ansible_ssh_private_key_file {tmp}/missing-key (in",
         "not a file (allowed: the path of an existing SSH private key file on the controller)",
         host_vars={"ansible_ssh_private_key_file": f"{TMP}/missing-key"}),
    gcp("gcp-ssh-key-file-missing", "provision", {"ssh": {"private_key_file": "/nonexistent/ibgw-key"}},
        "ssh.private_key_file: /nonexistent/ibgw-key is not a file", "the SSH private key registered with OS Login"),
    # Options where people type them: -i after the verb is taken; a verb's option before the verb is placed.
    case("inventory-flag-after-the-verb", ("up", "paper", "-i", f"{TMP}/missing"),
         "--inventory: {tmp}/missing does not exist", "allowed: an inventory file or folder"),
    case("limit-before-the-verb", "--limit nosuch up paper", "--limit is an option of up: it goes after the verb",
         "allowed: ibgw-ops [-i PATH] up ... --limit ..."),
    case("limit-empty", ("up", "paper", "--limit", ""), "argument --limit: '' is empty",
         "allowed: a host name, group or Ansible pattern over the hosts of group ibgw_gateways"),
    # No traceback: a host that is no name (a byte that is not UTF-8: idna's encoder raised), an empty image.
    case("probe-host-not-utf8", ("probe", "\udcff:4002"), "argument HOST:PORT:",
         "is not HOST:PORT with a host name or IP address and a port in 1-65535"),
    case("upgrade-image-empty", ("upgrade", "paper", "--image", ""), "argument --image: '' is not an image reference",
         "allowed: repository:10.50.1d or repository:tag@sha256:..."),
    # A user id no IBKR login can hold: refused before the gateway tries it (and counts a failed login).
    case("credentials-user-id-with-a-space", "deploy", "ib_gateway_credentials: paper.user_id holds",
         "for user_id printable ASCII without spaces",
         host_vars={"ib_gateway_credentials_file": f"{TMP}/space-user-credentials.yml"}),
]


def fill(value: Any, tmp: Path) -> Any:
    """``value`` with every ``{tmp}`` replaced by the module's temporary directory."""
    if isinstance(value, str):
        return value.replace(TMP, str(tmp))
    if isinstance(value, dict):
        return {key: fill(item, tmp) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(fill(item, tmp) for item in value)
    return value


def snapshot(lab: Lab) -> str:
    return lab.ssh(SNAPSHOT)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The controller-side files the cases point at."""
    tmp = tmp_path_factory.mktemp("bad-input")
    (tmp / "no-gateways.yml").write_text("all: {}\n")
    for name, credentials in {
        "only-live-credentials.yml": {"live": {"user_id": "rehearsal", "password": "not-the-lab-one"}},
        "bad-secret-credentials.yml": {"live": {"user_id": "rehearsal", "password": "not-the-lab-one"},
                                       "paper": {"user_id": "rehearsal", "password_secret": "hunter2"}},
        "space-user-credentials.yml": {"live": {"user_id": "rehearsal", "password": "not-the-lab-one"},
                                       "paper": {"user_id": "re hearsal", "password": "not-the-lab-one"}},
    }.items():
        path = tmp / name
        path.write_text(yaml.safe_dump({"ib_gateway_credentials": credentials}))
        path.chmod(0o600)
    (tmp / "broken-credentials.yml").write_text("ib_gateway_credentials: {live: [unclosed\n")
    (tmp / "broken-inventory" / "group_vars").mkdir(parents=True)
    (tmp / "broken-inventory" / "hosts.yml").write_text("ibgw_gateways:\n  hosts:\n    gw1: {}\n")
    (tmp / "broken-inventory" / "group_vars" / "ibgw_gateways.yml").write_text(
        "ib_gateway_watchdog_interval: 30\n  ib_gateway_alert_timeout: 5\nib_gateway_alert_repeat_interval: 0\n")
    (tmp / "broken-credentials.yml").chmod(0o600)
    for name, text, mode in (
            ("open-credentials.yml", (tmp / "only-live-credentials.yml").read_text(), 0o644),
            ("newline-credentials.yml", yaml.safe_dump({"ib_gateway_credentials": {
                "live": {"user_id": "rehearsal", "password": "not-the-lab-one"},
                "paper": {"user_id": "rehearsal", "password": "two\nlines"}}}), 0o600)):
        (tmp / name).write_text(text)
        (tmp / name).chmod(mode)
    for folder, raw in (("gcp-broken-yaml", b"project: demo\n: [\n"), ("gcp-latin1", b"project: d\xe9mo\n")):
        (tmp / folder).mkdir()
        (tmp / folder / "gcp.yml").write_bytes(raw)
    example = yaml.safe_load((data_dir() / "inventory" / "gcp" / "gcp.yml").read_text())
    for case_id, changes in GCP_SETTINGS.items():
        document = {**example, **changes.get("", {})}
        for section, values in changes.items():
            if section:
                document[section] = {**example.get(section, {}), **values}
        (tmp / case_id).mkdir()
        (tmp / case_id / "gcp.yml").write_text(yaml.safe_dump(document))
    vault_password = tmp / "vault-password"
    vault_password.write_text("not-given-to-the-cli\n")
    (tmp / "wrong-vault-password").write_text("not-the-one\n")
    subprocess.run([str(Path(sys.executable).parent / "ansible-vault"), "encrypt", "--vault-password-file",
                    str(vault_password), "--output", str(tmp / "vault-credentials.yml"),
                    str(tmp / "only-live-credentials.yml")], check=True, capture_output=True)
    (tmp / "vault-credentials.yml").chmod(0o600)
    return tmp


@pytest.fixture(scope="module")
def before(deployed: Lab) -> str:
    """The deployed host as every case must leave it."""
    taken = snapshot(deployed)
    assert "/opt/ibgw/paper/compose.yaml" in taken and "ibgw-api-firewall" in taken, taken
    return taken


@pytest.mark.parametrize("bad", CASES)
def test_bad_input_exits_2_names_the_field_and_the_allowed_values_and_changes_nothing(
        deployed: Lab, files: Path, before: str, bad: Case) -> None:
    deployed.host_settings(fill(bad.host_vars, files) or None)
    try:
        result = deployed.cli(*fill(bad.args, files), check=False, stdin=bad.stdin, env_extra=fill(bad.env, files))
    finally:
        deployed.host_settings(None)
    message = " ".join(result.stderr.split())
    assert result.returncode == ExitCode.BAD_INPUT, result.stderr
    assert fill(bad.field, files) in message, result.stderr
    for allowed in (bad.allowed,) if isinstance(bad.allowed, str) else bad.allowed:
        assert allowed in message, result.stderr
    assert snapshot(deployed) == before
