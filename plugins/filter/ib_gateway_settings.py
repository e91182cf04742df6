"""Jinja filters of the ib_gateway role: its instances resolved, its settings checked, its credentials sorted.

Tested Python instead of Jinja programs in vars/main.yml, and one assert (validate.yml) that shows every problem
at once. Credentials are only ever looked at by name: no filter returns or formats a value, only instance names,
keys and file names.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from itertools import combinations
from typing import Any

# The VM's own code (plugins/module_utils): days, times, zones and windows mean here what they mean on the VM.
from ansible_collections.ibgw_ops.gateway.plugins.module_utils import session_clock

# The credentials entry's keys that hold a password, each with the secret file it becomes.
PASSWORD_FILES = {"password": "tws_password", "vnc_password": "vnc_password"}
DAYS = list(session_clock.DAYS)
NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4 = re.compile(rf"^({OCTET}\.){{3}}{OCTET}$")
URL = re.compile(r"^https?://[^ /]+(/[^ ]*)?$")
IMAGE = re.compile(r"^[a-z0-9]+(([._-]|__|/|:[0-9]+/)[a-z0-9]+)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
                   r"(@sha256:[0-9a-f]{64})?$")
PINNED = re.compile(r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$")
FLOATING = re.compile(r":(latest|stable|edge)$")
# The gateway's version tags (10.45.1j): major, minor, build number and an optional letter, compared in that order.
VERSION_TAG = re.compile(r":([0-9]+)\.([0-9]+)\.([0-9]+)([a-z]?)(@sha256:[0-9a-f]{64})?$")
HHMM = session_clock.CLOCK_PATTERN
# IBC parses AutoRestartTime and AutoLogoffTime as "hh:mm a": a two-digit hour 01-12 ("09:30 PM", never "9:30 PM").
CLOCK = re.compile(r"^(0[1-9]|1[0-2]):[0-5][0-9] (AM|PM)$")
CLOCK_FIELDS = ("auto_restart_time", "auto_logoff_time")
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
MODES = ("live", "paper")
WINDOW_KEYS = ["days", "end", "start", "time_zone"]
# The prefix of the systemd units that open and close paper windows (ibgw_timers removes the ones no longer wanted).
WINDOW_UNIT_PREFIX = "ibgw-window-"
# The prefix of the units of the VM's weekly sign-in (ib_gateway_signin_schedule.on_vm), and how long after IBKR's
# weekly reset it may come: later, live would have been down since the reset.
SIGNIN_UNIT_PREFIX = "ibgw-signin-"
SIGNIN_AFTER_RESET = timedelta(days=1)
# Keys every instance needs from its mode (ib_gateway_mode_defaults) or itself.
MODE_KEYS = ("api_port", "vnc_port", "restart_policy", "existing_session_detected_action", "auto_restart_time",
             "max_lifetime")


def resolve_instances(instances: list[Mapping[str, Any]], defaults: Mapping[str, Any],
                      mode_defaults: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every instance with its settings: its own keys over its mode's defaults over the role-wide defaults."""
    return [{**defaults, **mode_defaults.get(str(instance.get("mode")), {}), **instance} for instance in instances]


def with_images(instances: list[Mapping[str, Any]], images: Mapping[str, str]) -> list[dict[str, Any]]:
    """The instances with the images an upgrade or a rollback installs (instance name -> reference) in place.

    The inventory keeps the old reference until the CLI edits it after the run, so the run itself carries the new
    one for the selected instances only: the others keep theirs.
    """
    return [{**instance, "image": images.get(str(instance.get("name")), instance.get("image"))}
            for instance in instances]


def _given(entry: Mapping[str, Any], key: str) -> bool:
    value = entry.get(key)
    return value is not None and len(str(value)) > 0


def _entry(credentials: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    entry = credentials.get(name)
    return entry if isinstance(entry, Mapping) else {}


def missing_credentials(instances: list[Mapping[str, Any]], credentials: Mapping[str, Any]) -> list[str]:
    """Instances lacking a user id, or a password of either kind (a value or a Secret Manager version)."""
    missing = []
    for instance in instances:
        entry = _entry(credentials, instance["name"])
        if not (_given(entry, "user_id") and (_given(entry, "password") or _given(entry, "password_secret"))):
            missing.append(instance["name"])
    return missing


def ambiguous_credentials(instances: list[Mapping[str, Any]], credentials: Mapping[str, Any]) -> list[str]:
    """"<instance>.<key>" for each password given both as a value and as a Secret Manager version."""
    return [f"{instance['name']}.{key}" for instance in instances for key in PASSWORD_FILES
            if _given(_entry(credentials, instance["name"]), key)
            and _given(_entry(credentials, instance["name"]), f"{key}_secret")]


def control_character_credentials(instances: list[Mapping[str, Any]], credentials: Mapping[str, Any]) -> list[str]:
    """"<instance>.<key>" for each user id or password holding a character no IBKR login can contain.

    A control character (a pasted newline, a tab) anywhere: IBC reads the values from files line by line, so such a
    value would be cut or mistyped at every login. In a user id also a space or a non-ASCII character: IBKR user
    names are printable ASCII, so the login could only fail (and count against the account's failed attempts).
    """
    return [f"{instance['name']}.{key}" for instance in instances for key in ("user_id", *PASSWORD_FILES)
            if _given(_entry(credentials, instance["name"]), key)
            and any(_unusable(char, key) for char in str(_entry(credentials, instance["name"])[key]))]


def _unusable(char: str, key: str) -> bool:
    """Whether ``char`` cannot be part of the credential ``key``."""
    if ord(char) < 32 or ord(char) == 127:
        return True
    return key == "user_id" and not (char.isascii() and char.isprintable() and not char.isspace())


def loose_file_mode(path: str) -> str:
    """The file's mode as 0oNNN when group or others may read or write it, else "" (0600 or stricter)."""
    mode = os.stat(path).st_mode & 0o777
    return f"{mode:04o}" if mode & 0o077 else ""


def bad_secret_names(instances: list[Mapping[str, Any]], credentials: Mapping[str, Any], pattern: str) -> list[str]:
    """"<instance>.<key>_secret" for each Secret Manager version name that does not match the pattern."""
    bad = []
    for instance in instances:
        entry = _entry(credentials, instance["name"])
        for key in PASSWORD_FILES:
            name = entry.get(f"{key}_secret")
            if _given(entry, f"{key}_secret") and not (isinstance(name, str) and re.match(pattern, name)):
                bad.append(f"{instance['name']}.{key}_secret")
    return bad


def credential_errors(instances: list[Mapping[str, Any]], credentials: Mapping[str, Any], pattern: str,
                      endpoints: Mapping[str, Any]) -> list[str]:
    """Every problem with the credentials and the Secret Manager endpoints, at once, naming instances and fields.

    Names only, never values: a password pasted into password_secret stays unseen.
    """
    errors = []
    if missing := missing_credentials(instances, credentials):
        errors.append(f"ib_gateway_credentials: instances {missing} need user_id and password (or password_secret, a "
                      "Secret Manager version the VM reads) in a vault-encrypted inventory file, or in the file "
                      "named by ib_gateway_credentials_file.")
    if ambiguous := ambiguous_credentials(instances, credentials):
        errors.append(f"ib_gateway_credentials: {', '.join(ambiguous)} given both as a value and as a Secret Manager "
                      "version (<key>_secret); give one of them.")
    if unusable := control_character_credentials(instances, credentials):
        errors.append(f"ib_gateway_credentials: {', '.join(unusable)} holds a control character such as a newline or "
                      "a tab, or (a user_id) a space or a non-ASCII character (allowed: printable characters only, "
                      "and for user_id printable ASCII without spaces; check for a pasted line break).")
    if bad := bad_secret_names(instances, credentials, pattern):
        errors.append(f"ib_gateway_credentials: {', '.join(bad)} must be a Secret Manager version name, "
                      "projects/<project id or number>/secrets/<secret id>/versions/<version number or latest>.")
    urls = [endpoints.get(key) for key in ("metadata_url", "secret_manager_url")]
    if not all(_matches(URL, url) for url in urls) or _int(endpoints.get("timeout")) < 1:
        errors.append(f"ib_gateway_metadata_url and ib_gateway_secret_manager_url: http:// or https:// URLs (got "
                      f"'{urls[0]}', '{urls[1]}'); ib_gateway_secret_manager_timeout: seconds, at least 1 (got "
                      f"'{endpoints.get('timeout')}').")
    return errors


def vnc_instances(instances: list[Mapping[str, Any]], credentials: Mapping[str, Any]) -> list[str]:
    """The instances with a VNC password (a value or a Secret Manager version): VNC is on for them only."""
    return [instance["name"] for instance in instances
            if _given(_entry(credentials, instance["name"]), "vnc_password")
            or _given(_entry(credentials, instance["name"]), "vnc_password_secret")]


def secret_files(instances: list[Mapping[str, Any]], credentials: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each instance's secret files and where each comes from.

    ``key`` is the credentials entry's key holding the password (``secret_manager`` false) or the Secret Manager
    version name (``secret_manager`` true); a Secret Manager version wins over a value.
    """
    files = []
    for instance in instances:
        entry = _entry(credentials, instance["name"])
        for key, file in PASSWORD_FILES.items():
            if _given(entry, f"{key}_secret"):
                files.append({"instance": instance["name"], "file": file, "key": f"{key}_secret",
                              "secret_manager": True})
            elif _given(entry, key):
                files.append({"instance": instance["name"], "file": file, "key": key, "secret_manager": False})
    return files


def _int(value: object) -> int:
    """Jinja's ``int`` filter: a number, else 0."""
    try:
        return int(str(value))
    except ValueError:
        try:
            return int(float(str(value)))
        except ValueError:
            return 0


def _matches(pattern: re.Pattern[str], value: object) -> bool:
    return pattern.match(str(value)) is not None


def _zone(value: object) -> bool:
    """An IANA time zone this machine's zone database knows (America/NewYork looks like one, and is not)."""
    try:
        session_clock.zone(value)
    except ValueError:
        return False
    return True


def setting_errors(instances: list[Mapping[str, Any]], settings: Mapping[str, Any]) -> list[str]:
    """Every problem with the resolved instances and the role's settings, one message per check that fails.

    ``settings``: ``protected_window``, ``signin_schedule``, ``maintenance``, ``target``, ``managed_env``,
    ``probe_client_id``, ``pipeline_client_id``, ``watchdog`` (the ib_gateway_watchdog_* and alert settings by their
    variable names), and ``instances`` (false: lifecycle actions, which use only names, ports and the target; true:
    check and deploy, which also check each instance's own settings, the watchdog's and the maintenance windows).
    """
    errors = _instance_set_errors(instances)
    calendar_errors = _calendar_errors(settings["protected_window"], settings["signin_schedule"])
    errors += calendar_errors
    errors += _client_id_errors(settings["probe_client_id"], settings["pipeline_client_id"])
    if settings["instances"]:
        for instance in instances:
            errors += _instance_errors(instance, settings["managed_env"])
        errors += _watchdog_errors(settings["watchdog"])
        errors += _maintenance_errors(settings["maintenance"])
        if not calendar_errors:
            errors += _signin_errors(instances, settings["signin_schedule"], settings["protected_window"],
                                     datetime.now(UTC))
    if instances and not select(instances, str(settings["target"])):
        allowed = list(dict.fromkeys([str(i.get("mode")) for i in instances] + [str(i["name"]) for i in instances]))
        errors.append(f"ib_gateway_target: '{settings['target']}' matches no instance (allowed: all, "
                      f"{', '.join(allowed)}).")
    return errors


def select(instances: list[Mapping[str, Any]], target: str) -> list[Mapping[str, Any]]:
    """The instances an action acts on: ``target`` is "all", a mode, or an instance name."""
    if target == "all":
        return list(instances)
    return [i for i in instances if i.get("name") == target or i.get("mode") == target]


def _instance_set_errors(instances: list[Mapping[str, Any]]) -> list[str]:
    errors = []
    names = [instance.get("name") for instance in instances]
    if not names or len(set(map(str, names))) != len(names) or not all(_matches(NAME, name) for name in names):
        errors.append("ib_gateway_instances[].name: at least one instance; names unique, 1-31 lowercase letters, "
                      f"digits or dashes, starting with a letter (got {names}).")
    for instance in instances:
        if instance.get("name") in MODES and instance.get("mode") != instance.get("name"):
            errors.append(f"ib_gateway_instances[{instance['name']}].mode: an instance named {instance['name']} must "
                          f"have mode {instance['name']} (got '{instance.get('mode')}'): cron's paper-up would start "
                          f"it by its name; give it a name of its own, such as {instance.get('mode')}-2.")
    for key in MODE_KEYS:
        lacking = [instance.get("name") for instance in instances if key not in instance]
        if lacking:
            errors.append(f"ib_gateway_mode_defaults: an overridden dict lacks '{key}' for instances {lacking}; give "
                          f"every mode all of {', '.join(MODE_KEYS)}, or set the key on the instance.")
    api = [instance.get("api_port") for instance in instances]
    vnc = [instance.get("vnc_port") for instance in instances]
    ports = [_int(port) for port in api + vnc]
    if any(not 1 <= port <= 65535 for port in ports) or len(set(ports)) != len(ports):
        errors.append("ib_gateway_instances[].api_port / vnc_port: each must be 1-65535 and used once across the "
                      f"host's instances (got api_port {api}, vnc_port {vnc}).")
    return errors


def _client_id_errors(probe: object, pipeline: object) -> list[str]:
    """The pipeline's client id (paper-run --client-id) must not be the probe's: one session per id."""
    if str(pipeline) == "" or _int(pipeline) != _int(probe):
        return []
    return [f"ib_gateway_pipeline_client_id (paper-run --client-id): {pipeline} is the readiness probe's client id, "
            f"ib_gateway_probe_client_id; the gateway allows one session per client id, so the probe would find it "
            f"taken (allowed: a whole number of 0 or more other than {probe})."]


def _parses(parse: Any, value: object) -> bool:
    try:
        parse(value)
    except ValueError:
        return False
    return True


def _calendar_errors(window: object, schedule: object) -> list[str]:
    window_ok = isinstance(window, Mapping) and (window == {} or (
        sorted(window) == ["days", "end", "start", "time_zone"] and _parses(session_clock.Window.parse, dict(window))))
    schedule_ok = isinstance(schedule, Mapping) and schedule.get("day", "") in DAYS and _matches(
        HHMM, schedule.get("time", "")) and _zone(schedule.get("time_zone", ""))
    if window_ok and schedule_ok:
        return []
    days = ", ".join(DAYS)
    return [f"ib_gateway_protected_window: {{}} or {{time_zone: an IANA name such as America/New_York, days: a list "
            f"of {days}, start and end: 24-hour HH:MM}} (got {window}); ib_gateway_signin_schedule: {{day: one of "
            f"{days}, time: HH:MM, time_zone: an IANA name}} (got {schedule})."]


def _maintenance_errors(windows: object) -> list[str]:
    """IBKR's maintenance windows (the watchdog's quiet times for disconnects): a list of named windows."""
    shape = (f"{{name: text, time_zone: an IANA name such as America/New_York, days: a list of {', '.join(DAYS)}, "
             "start and end: 24-hour HH:MM}")
    if not isinstance(windows, list):
        return [f"ib_gateway_ibkr_maintenance: a list of {shape}, [] for none (got {windows!r})."]
    errors = []
    for index, window in enumerate(windows):
        where = f"ib_gateway_ibkr_maintenance[{index}]"
        if not isinstance(window, Mapping) or sorted(window) != ["days", "end", "name", "start", "time_zone"]:
            errors.append(f"{where}: {shape} (got {window!r}).")
        elif not isinstance(window["name"], str) or not window["name"].strip():
            errors.append(f"{where}.name: a name the alerts can quote, such as \"IBKR's nightly maintenance\" (got "
                          f"{window['name']!r}).")
        else:
            try:
                session_clock.Window.parse(dict(window))
            except ValueError as problem:
                errors.append(f"{where}.{problem}")
    return errors


def _instance_errors(instance: Mapping[str, Any], managed_env: list[str]) -> list[str]:
    name = instance["name"]
    where = f"ib_gateway_instances[{name}]"
    errors = []
    if not _matches(IPV4, instance["bind_address"]):
        errors.append(f"{where}.bind_address (default ib_gateway_bind_address): an IPv4 address, 127.0.0.1 or the "
                      f"VM's internal IP (got '{instance['bind_address']}').")
    image = str(instance["image"])
    if not (_matches(IMAGE, image) and PINNED.search(image) and not FLOATING.search(image)):
        errors.append(f"{where}.image (default ib_gateway_image): a full reference pinned to a version tag "
                      "(repository:10.45.1j) or a digest (repository@sha256:...); floating tags latest/stable are "
                      f"refused (got '{image}').")
    if instance.get("mode") == "paper" and instance["restart_policy"] != "no":
        errors.append(f'{where}.restart_policy: a paper instance must use "no" so that it never comes back after a '
                      "reboot or a daemon restart and kicks the trader who shares its login "
                      f"(got '{instance['restart_policy']}').")
    max_lifetime = instance["max_lifetime"]
    if not (_int(instance["stop_grace_period"]) >= 90 and _int(instance["java_heap_size"]) >= 256
            and _int(instance["nofile"]) >= 1024 and _int(instance["twofa_exit_interval"]) >= 1
            and re.match(r"^[0-9]+$", str(max_lifetime)) and (_int(max_lifetime) == 0 or _int(max_lifetime) >= 60)):
        errors.append(f"{where}: stop_grace_period >= 90 (s, got {instance['stop_grace_period']}), java_heap_size "
                      f">= 256 (MB, got {instance['java_heap_size']}), nofile >= 1024 (got {instance['nofile']}), "
                      f"twofa_exit_interval >= 1 (s, got {instance['twofa_exit_interval']}), max_lifetime 0 (off) or "
                      f">= 60 (s, got {max_lifetime}).")
    for key in CLOCK_FIELDS:
        if instance[key] != "" and not _matches(CLOCK, instance[key]):
            errors.append(f'{where}.{key}: "hh:mm AM" or "hh:mm PM" with a two-digit hour 01-12, as IBC reads it '
                          f'(for example "09:30 PM", not "9:30 PM"), or empty (got \'{instance[key]}\').')
    cold_restart, master = instance["cold_restart"], instance["master_client_id"]
    if not (_zone(instance["time_zone"]) and (cold_restart == "" or _matches(HHMM, cold_restart))
            and re.match(r"^[0-9]*$", str(master))):
        errors.append(f"{where}: time_zone a TZ name such as America/New_York (got '{instance['time_zone']}'); "
                      f"cold_restart \"HH:MM\" (24-hour, Sundays only) or empty (got '{cold_restart}'); "
                      f"master_client_id digits or empty (got '{master}').")
    errors += _window_errors(instance, where)
    extra_env = instance["extra_env"]
    if (any(re.search("PASSWORD|PASSPHRASE", key) for key in extra_env) or set(extra_env) & set(managed_env)
            or not all(ENV_NAME.match(key) for key in extra_env)
            or any(re.search("['\n]", str(value)) for value in extra_env.values())):
        errors.append(f"{where}.extra_env: UPPER_CASE names of non-secret variables; no passwords or passphrases "
                      f"(those go in secret files), none of {', '.join(managed_env)}, no quotes or newlines in "
                      f"values (got keys {list(extra_env)}).")
    return errors


def _window_errors(instance: Mapping[str, Any], where: str) -> list[str]:
    """Each window parses, ends after it starts, overlaps no other, and opens paper (live only by opting in)."""
    windows = instance.get("windows", [])
    allowed = "a list of {days: [mon..sun], start: HH:MM, end: HH:MM (after start), time_zone: an IANA name}"
    if not isinstance(windows, list):
        return [f"{where}.windows: {allowed} (got {windows!r})."]
    errors = []
    if windows and instance.get("mode") != "paper" and instance.get("windows_allow_live") is not True:
        errors.append(f"{where}.windows: a window starts paper instances only: a live start needs the 2FA approval "
                      "on the phone each time (set windows_allow_live: true on the instance to mean it).")
    parsed = []
    for index, spec in enumerate(windows):
        field = f"{where}.windows[{index}]"
        if not isinstance(spec, Mapping) or sorted(spec) != WINDOW_KEYS:
            errors.append(f"{field}: {allowed} (got {spec!r}).")
            continue
        try:
            window = session_clock.Window.parse(dict(spec))
        except ValueError as exc:
            errors.append(f"{field}.{exc}.")
            continue
        if window.end <= window.start:
            errors.append(f"{field}.end: after start (got start {spec['start']}, end {spec['end']}): a paper window "
                          "does not span midnight; split it in two.")
            continue
        parsed.append((index, window))
    now = datetime.now(UTC)
    for (first, one), (second, other) in combinations(parsed, 2):
        if any(a_start < b_end and b_start < a_end for a_start, a_end in one.spans(now, 15)
               for b_start, b_end in other.spans(now, 15)):
            errors.append(f"{where}.windows[{first}] and [{second}]: they overlap; a window must end before the "
                          "next one starts.")
    return errors


def window_units(instances: list[Mapping[str, Any]], root: str) -> dict[str, str]:
    """The systemd units of every instance's windows, by file name: a timer and a service at each start and end.

    The start runs the instance's start (on_host/gateway_start.py, the same as paper-up: lock, dead-man switch until
    the end, readiness wait, tidy stop after a failure); the end runs the instance's stop script. OnCalendar carries
    the window's zone, so systemd moves them with daylight saving time.
    """
    units = {}
    for instance in instances:
        name, directory = instance["name"], f"{root}/{instance['name']}"
        for number, spec in enumerate(instance.get("windows") or [], 1):
            unit = f"{WINDOW_UNIT_PREFIX}{name}-{number}"
            days = ",".join(str(day).capitalize() for day in spec["days"])
            span = f"{days} {spec['start']}-{spec['end']} {spec['time_zone']}"
            start = (f"/usr/bin/python3 -m ibgw_on_host.gateway_start {directory}/start.json --until {spec['end']} "
                     f"--time-zone {spec['time_zone']}")
            for edge, at, run in (("start", spec["start"], start), ("end", spec["end"], f"{directory}/stop")):
                units.update(_timer_units(f"{unit}-{edge}", f"ibgw-ops: window {number} of gateway {name} ({span}), "
                                          f"{edge}", calendar(days, at, spec["time_zone"]), directory, run))
    return units


def calendar(days: str, at: str, time_zone: str) -> str:
    """The OnCalendar of ``days`` (Mon,Tue) at ``at`` (HH:MM) in ``time_zone``: DST moves it as it moves clocks."""
    return f"{days} *-*-* {at}:00 {time_zone}"


def _timer_units(unit: str, description: str, on_calendar: str, directory: str, run: str) -> dict[str, str]:
    """A timer and its oneshot service running ``run`` with the instance's VM-side code on PYTHONPATH.

    Python writes no bytecode caches into that code's folder: the role's files there stay the role's.
    """
    return {
        f"{unit}.timer": (f"[Unit]\nDescription={description}\n\n[Timer]\nOnCalendar={on_calendar}\nAccuracySec=1s\n\n"
                          "[Install]\nWantedBy=timers.target\n"),
        f"{unit}.service": (f"[Unit]\nDescription={description}\n\n[Service]\nType=oneshot\n"
                            f"Environment=PYTHONPATH={directory}/lib\nEnvironment=PYTHONDONTWRITEBYTECODE=1\n"
                            f"ExecStart={run}\n"),
    }


def signin_units(instances: list[Mapping[str, Any]], schedule: Mapping[str, Any], root: str) -> dict[str, str]:
    """With the schedule's on_vm, a timer per live instance at the planned sign-in, and its service.

    The service is the instance's start as a window's (on_host/gateway_start.py) with --signin: a tidy stop, then
    one 2FA push and alerts with the deadline, the sign-in recorded as live-signin records it. {} without on_vm:
    ibgw_timers then removes the units.
    """
    if schedule.get("on_vm") is not True:
        return {}
    units = {}
    day, at, time_zone = str(schedule["day"]), str(schedule["time"]), str(schedule["time_zone"])
    for instance in (instance for instance in instances if instance.get("mode") == "live"):
        name, directory = instance["name"], f"{root}/{instance['name']}"
        run = f"/usr/bin/python3 -m ibgw_on_host.gateway_start {directory}/start.json --signin --time-zone {time_zone}"
        description = f"ibgw-ops: the weekly 2FA sign-in of gateway {name} ({day} {at} {time_zone})"
        units.update(_timer_units(f"{SIGNIN_UNIT_PREFIX}{name}", description, calendar(day.capitalize(), at, time_zone),
                                  directory, run))
    return units


def _signin_errors(instances: list[Mapping[str, Any]], schedule: Mapping[str, Any], window: Mapping[str, Any],
                   now: datetime) -> list[str]:
    """With on_vm: the planned sign-ins of a year, each in the day after IBKR's reset, none in the protected window.

    And live's IBC sends one 2FA push only: no relogin, and an exit at the 2FA timeout.
    """
    on_vm = schedule.get("on_vm", False)
    if not isinstance(on_vm, bool):
        return [f"ib_gateway_signin_schedule.on_vm: true or false (got {on_vm!r})."]
    if not on_vm:
        return []
    errors = []
    tz, at = session_clock.zone(schedule["time_zone"]), session_clock.clock(schedule["time"])
    planned = f"{schedule['day']} {schedule['time']} {schedule['time_zone']}"
    protected = session_clock.Window.parse(dict(window)) if window else None
    moment, late, inside = now, None, None
    for _ in range(53):  # a year of planned sign-ins: every daylight saving time change of both zones
        moment = session_clock.next_weekly(moment, str(schedule["day"]), at, tz)
        after_reset = moment - session_clock.last_reset(moment)
        if late is None and not timedelta(0) < after_reset <= SIGNIN_AFTER_RESET:
            late = moment
        if inside is None and protected is not None and protected.contains(moment):
            inside = moment
    reset = session_clock.RESET_ZONE
    if late is not None:
        errors.append(f"ib_gateway_signin_schedule: with on_vm true the VM signs in at {planned}, which must come "
                      f"after IBKR's weekly reset ({session_clock.RESET_DAY} {session_clock.RESET_TIME:%H:%M} "
                      f"{reset}) and within the day after it, so that the "
                      f"sign-in lasts the week (a sign-in before the reset would be wasted); "
                      f"{late.astimezone(session_clock.zone(reset)):%a %Y-%m-%d %H:%M} {reset} is not (allowed: "
                      f"from sun 01:01 to mon 01:00 {reset}, such as sun 17:00 {reset}).")
    if inside is not None:
        errors.append(f"ib_gateway_signin_schedule: with on_vm true the VM signs in at {planned}, which falls inside "
                      f"ib_gateway_protected_window on {inside.astimezone(tz):%a %Y-%m-%d %H:%M %Z}; plan it outside.")
    for instance in (instance for instance in instances if instance.get("mode") == "live"):
        relogin, action = instance["relogin_after_twofa_timeout"], instance["twofa_timeout_action"]
        if str(relogin).lower() not in ("no", "false") or action != "exit":
            errors.append(f"ib_gateway_instances[{instance['name']}]: with ib_gateway_signin_schedule.on_vm true, "
                          f"relogin_after_twofa_timeout must be \"no\" and twofa_timeout_action \"exit\" (got "
                          f"'{relogin}', '{action}'): otherwise IBC sends another 2FA push after the first one times "
                          "out, and repeated pushes can lock the account.")
    return errors


# The watchdog's whole-number settings: (least, most) allowed.
WATCHDOG_NUMBERS = {
    "ib_gateway_watchdog_interval": (0, 3600),
    "ib_gateway_watchdog_not_ready_ticks": (1, 1000),
    "ib_gateway_disconnect_grace": (0, 86400),
    "ib_gateway_session_expiring_before": (0, 7 * 86400),
    "ib_gateway_alert_repeat_interval": (0, 7 * 86400),
}
WEBHOOK = re.compile(r"^https?://[^/\s:@]+(:[0-9]{1,5})?(/\S*)?$")


# The lifecycle's whole-number settings (the CLI's --timeout, -n and --client-id have the same ranges).
NUMBERS = {
    "ib_gateway_ready_timeout": (1, 86400),
    "ib_gateway_lock_timeout": (1, 86400),
    "ib_gateway_log_lines": (1, 100000),
    "ib_gateway_probe_client_id": (0, 2**31 - 1),
}


def number_errors(values: Mapping[str, Any]) -> list[str]:
    """One message for each setting of ``values`` outside its range in ``WATCHDOG_NUMBERS`` or ``NUMBERS``."""
    ranges = {**WATCHDOG_NUMBERS, **NUMBERS}
    errors = []
    for key, value in values.items():
        least, most = ranges[key]
        if not (re.match(r"^[0-9]+$", str(value)) and least <= int(str(value)) <= most):
            off = " (0 turns it off)" if least == 0 and key.endswith("interval") else ""
            unit = next((f" of {unit}" for unit in ("ticks", "lines") if key.endswith(unit)),
                        "" if key.endswith("client_id") else " of seconds")
            errors.append(f"{key}: a whole number{unit} from {least} to {most}{off} (got '{value}').")
    return errors


def _watchdog_errors(watchdog: Mapping[str, Any]) -> list[str]:
    """The watchdog's numbers, the alert timeout and the webhook's shape; the webhook is never shown (a token)."""
    errors = number_errors({key: watchdog[key] for key in WATCHDOG_NUMBERS})
    try:
        timeout = float(str(watchdog["ib_gateway_alert_timeout"]))
    except ValueError:
        timeout = 0.0
    if not 0 < timeout <= 60:
        errors.append(f"ib_gateway_alert_timeout: seconds, more than 0 and at most 60 "
                      f"(got '{watchdog['ib_gateway_alert_timeout']}').")
    for key in ("ib_gateway_alert_webhook", "ib_gateway_heartbeat_url"):
        url = watchdog[key]
        if url != "" and not (isinstance(url, str) and WEBHOOK.match(url)):
            errors.append(f"{key}: empty, or an http(s) URL with a host, such as https://hooks.example.net/path "
                          "(the value is not shown: the URL may carry a token).")
    return errors + _apprise_errors(watchdog["ib_gateway_alert_urls"])


def _apprise_errors(urls: Any) -> list[str]:
    """Each Apprise URL must be one Apprise (on the controller) can use; a bad one is named by its position only."""
    if not isinstance(urls, list):
        return ["ib_gateway_alert_urls: a list of Apprise URLs, such as slack://..., ntfy://..., json://... "
                "([] for none)."]
    if not urls:
        return []
    try:
        import apprise  # noqa: PLC0415 - needed only when URLs are set; the controller's ibgw-ops installs it
    except ImportError:
        return ["ib_gateway_alert_urls: checking Apprise URLs needs the apprise package beside Ansible on the "
                "controller (pip install apprise; ibgw-ops installs it)."]
    apprise_log = logging.getLogger("apprise")
    apprise_log.disabled = True  # its messages may quote the URL
    try:
        bad = [index for index, url in enumerate(urls)
               if not isinstance(url, str) or apprise.Apprise.instantiate(url, suppress_exceptions=True) is None]
    finally:
        apprise_log.disabled = False
    return [f"ib_gateway_alert_urls[{index}]: not a URL Apprise can use; give one of its services' URLs, such as "
            "slack://, tgram://, ntfy://, pagerduty://, pover://, mailto://, json:// (the value is not shown: it "
            "may carry a token)." for index in bad]


def image_floor_errors(instances: list[Mapping[str, Any]], floor: str) -> list[str]:
    """One message per instance whose image's version tag is older than ``floor`` (a version or a reference).

    IBKR stops accepting logins from retired versions, so an upgrade (or a rollback) must never go below the floor;
    a reference without a version tag cannot be compared and is refused while a floor is set.
    """
    if not floor:
        return []
    # A bare version (10.45.1j) or a reference, with or without a digest (repository:10.45.1j@sha256:...).
    lowest = _version(floor if ":" in floor.partition("@")[0] else f":{floor}")
    if lowest is None:
        return [f"ib_gateway_image_floor: a version such as 10.45.1j (got '{floor}')."]
    errors = []
    for instance in instances:
        image = str(instance["image"])
        version = _version(image)
        if version is None or version < lowest:
            errors.append(f"ib_gateway_instances[{instance['name']}].image: a version tag at or above "
                          f"ib_gateway_image_floor {floor} (got '{image}').")
    return errors


def rollback_points(slurped: list[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Each rollback point read back (slurp results of rollback-image files, JSON) with what a rollback needs.

    ``tag``: the reference without its digest, which the recorded image id is tagged with again ("" when the
    reference has no tag); ``reference``: what the instance is set to, pinned to the registry digest when the image
    has one (an image loaded from an archive has none: its tag then points at the recorded id).
    """
    points = []
    for result in slurped:
        recorded = json.loads(base64.b64decode(result["content"]))
        name = str(recorded["reference"]).partition("@")[0]
        tag = name if ":" in name.rpartition("/")[2] else ""
        digest = str(recorded.get("digest") or "")
        points.append({"instance": str(result["item"]["name"]), "image_id": str(recorded["image_id"]), "tag": tag,
                       "reference": f"{name}@{digest}" if digest else str(recorded["reference"])})
    return points


def _version(reference: str) -> tuple[int, int, int, str] | None:
    found = VERSION_TAG.search(reference)
    return (int(found[1]), int(found[2]), int(found[3]), found[4]) if found else None


def open_windows(instances: list[Mapping[str, Any]], now: datetime | None = None) -> list[str]:
    """The instances with a window open now (or at ``now``).

    Their timers start paper at a window's start only, so a deploy that adds or changes a window while it is open
    starts nothing before the next one; deploy says so.
    """
    now = now or datetime.now(UTC)
    return [str(instance["name"]) for instance in instances
            if any(session_clock.Window.parse(dict(spec)).contains(now) for spec in instance.get("windows") or [])]


def deploy_report(deployed: list[Mapping[str, Any]], instances: list[Mapping[str, Any]], pending_by_secret: list[str],
                  open_now: list[str]) -> list[dict[str, dict[str, Any]]]:
    """What deploy reports to ibgw-ops, as the debug payloads it reads, from one task instead of three.

    One ``ibgw_deployed`` per gateway (from ibgw_instance's ``instances``; a gateway with no container yet shows the
    image it is set to), then an ``ibgw_notice`` per open window whose paper is not running (its timer starts it at
    the next window only) and per gateway left with a pending restart.
    """
    images = {str(instance["name"]): instance["image"] for instance in instances}
    report: list[dict[str, dict[str, Any]]] = []
    running: set[str] = set()
    pending: list[str] = []
    for result in deployed:
        name = str(result["name"])
        restart_pending = bool(result["restart_pending"]) or name in pending_by_secret
        report.append({"ibgw_deployed": {
            "instance": name, "container": result["container"], "restart_pending": restart_pending,
            "image": result["image"] or images[name], "image_id": result["image_id"],
            "image_digest": result["image_digest"]}})
        if result["container"] == "running":
            running.add(name)
        if result["restart_pending"]:
            pending.append(name)
    pending += [name for name in pending_by_secret if name not in pending]
    report += [{"ibgw_notice": {"instance": name, "message": (
        f"window open now: {name} is not running, and its timer starts it at a window's start only, so it waits for "
        f"its next window ('ibgw-ops status' shows when); 'ibgw-ops up {name}' (playbooks/start.yml with "
        f"ib_gateway_target={name}) starts it for this one.")}} for name in open_now if name not in running]
    report += [{"ibgw_notice": {"instance": name, "message": (
        f"restart pending: gateway {name} runs with an older configuration; apply it with 'ibgw-ops restart {name}' "
        "(playbooks/restart.yml) when a restart is acceptable.")}} for name in pending]
    return report


class FilterModule:
    """The role's filters, each named after the vars/main.yml variable it computes."""

    def filters(self) -> dict[str, Any]:
        """Ansible's filter plugin entry point."""
        return {
            "ib_gateway_resolve_instances": resolve_instances,
            "ib_gateway_setting_errors": setting_errors,
            "ib_gateway_number_errors": number_errors,
            "ib_gateway_select": select,
            "ib_gateway_with_images": with_images,
            "ib_gateway_rollback_points": rollback_points,
            "ib_gateway_image_floor_errors": image_floor_errors,
            "ib_gateway_credential_errors": credential_errors,
            "ib_gateway_loose_file_mode": loose_file_mode,
            "ib_gateway_vnc_instances": vnc_instances,
            "ib_gateway_secret_files": secret_files,
            "ib_gateway_window_units": window_units,
            "ib_gateway_signin_units": signin_units,
            "ib_gateway_open_windows": open_windows,
            "ib_gateway_deploy_report": deploy_report,
        }
