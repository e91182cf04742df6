"""How the verbs show gateways: status rows (uptime, session calendar, warnings) as text or JSON; ready, deployed."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from ibgw_ops.errors import BadInput
from ibgw_ops.on_host import gateway_log, session_clock

COLUMNS = ("host", "instance", "mode", "container", "uptime", "probe", "accounts", "memory", "previous", "image",
           "digest")
# What the TWS API's notices with these codes say about the gateway's links (the probe collects them).
NOTICES = {1100: "IBKR lost", 1101: "IBKR back, data lost", 1102: "IBKR back", 2110: "TWS-server link broken",
           2103: "market data farm broken", 2104: "market data farm OK", 2105: "HMDS farm broken",
           2106: "HMDS farm OK", 2107: "HMDS farm inactive", 2108: "market data farm inactive",
           2157: "sec-def farm broken", 2158: "sec-def farm OK"}


def with_uptime(rows: Sequence[dict[str, Any]], now: datetime | None = None) -> list[dict[str, Any]]:
    """Rows sorted by host and instance, each with ``uptime_seconds`` (None when not running)."""
    moment = now or datetime.now(UTC)
    result = []
    for row in sorted(rows, key=lambda r: (r["host"], r["instance"])):
        started = gateway_log.moment_if_set(row.get("started_at") or "") if row.get("container") == "running" else None
        uptime = int((moment - started).total_seconds()) if started else None
        result.append({**row, "uptime_seconds": uptime})
    return result


def with_sessions(rows: Sequence[dict[str, Any]], now: datetime | None = None) -> list[dict[str, Any]]:
    """Rows with ``warnings`` ([kind, text] pairs; kinds as in docs/operations.md's alert table) and live's calendar.

    A row with paper windows gets ``window_opens`` and ``window_closes`` (its next or current window), and
    ``window_waits_until`` when that window is open but paper is not running. A signed-in
    live row gets ``signed_in_at``, ``next_reset``, ``limit``, ``good_until``, ``next_signin`` (ISO
    times in the operator's local zone) and ``session_age_seconds``.
    """
    moment = now or datetime.now(UTC)
    return [_assessed(row, moment) for row in rows]


def _assessed(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    result = {**row, "warnings": [], **_next_window(row, now)}
    warn = result["warnings"].append
    if row.get("oom_killed"):
        warn(["container_exited", f"the container was OOM-killed (exit {row.get('exit_code')}): raise the "
                                  "instance's java_heap_size or the VM's memory"])
    reason = row.get("reason")
    if reason == "session_taken":
        warn(["session_taken", "the IBKR login is in use elsewhere: the gateway gave up its session"])
    elif reason == "login_failed":
        warn(["login_failed", "IBKR refused the user id or password"])
    if row.get("mode") != "live":
        return result
    if row.get("container") != "running":
        warn(["session_expiring", "live is not running: sign in with 'ibgw-ops live-signin'"])
        return result
    if row.get("probe") != "ready":
        what = "waiting for the 2FA approval" if reason == "twofa_pending" else f"probe: {row.get('probe')}"
        warn(["2fa_needed" if reason == "twofa_pending" else "not_ready", f"live is not ready ({what})"])
    signed_in = session_clock.parse_utc(str(row.get("signed_in_at") or ""))
    if signed_in is None:
        warn(["session_expiring", "no sign-in record on the host: the session's age is unknown; sign in with "
                                  "'ibgw-ops live-signin' to start a known week"])
        return result
    try:
        session = session_clock.LiveSession.of(signed_in, now, row.get("signin_schedule") or {})
    except (ValueError, KeyError) as exc:
        raise BadInput("ib_gateway_signin_schedule", str(exc),
                       "{day: mon..sun, time: HH:MM, time_zone: an IANA name}") from exc
    local = {name: _local(getattr(session, name)) for name in
             ("signed_in", "next_reset", "limit", "good_until", "next_signin")}
    result.update(signed_in_at=local.pop("signed_in"), **local,
                  session_age_seconds=int((now - session.signed_in).total_seconds()))
    if not session.lasts():
        warn(["session_expiring", f"the session ends {shown(session.good_until)} (IBKR's weekly reset or the "
                                  f"7-day limit), before the next planned sign-in {shown(session.next_signin)}: "
                                  "sign in again after the reset, by the planned time"])
    return result


def _next_window(row: dict[str, Any], now: datetime) -> dict[str, str]:
    """``window_opens`` and ``window_closes`` of the instance's next (or current) paper window, when it has one."""
    try:
        spans = sorted(span for spec in row.get("windows") or []
                       for span in session_clock.Window.parse(spec).spans(now))
    except (ValueError, TypeError) as exc:
        raise BadInput(f"ib_gateway_instances[{row['instance']}].windows", str(exc),
                       "[{days: [mon..sun], start: HH:MM, end: HH:MM, time_zone: an IANA name}]") from exc
    if not spans:
        return {}
    found = {"window_opens": _local(spans[0][0]), "window_closes": _local(spans[0][1])}
    if spans[0][0] <= now and row.get("container") != "running" and len(spans) > 1:
        # Open now, and paper is down: its timer starts paper at a window's start only (a window added or changed
        # while open, a start that failed, a paper-down), so paper waits for the next one.
        found["window_waits_until"] = _local(spans[1][0])
    return found


def _local(moment: datetime) -> str:
    return moment.astimezone().isoformat(timespec="minutes")


def shown(moment: datetime) -> str:
    """A moment in the operator's local zone, as every verb shows it."""
    return moment.astimezone().strftime("%a %Y-%m-%d %H:%M %Z")


def render_sessions(rows: Sequence[dict[str, Any]]) -> str:
    """The live sessions' calendars, paper's next window, the IBKR notices the probe saw and every warning.

    Times are in the operator's local time zone.
    """
    lines = []
    for row in rows:
        where = f"{row['instance']} on {row['host']}"
        if notices_line(row):
            lines.append(f"{where}: IBKR notices: {notices_line(row)}")
        if row.get("window_opens"):
            lines.append(f"{where}: next window {_shown_iso(row['window_opens'])} to "
                         f"{_shown_iso(row['window_closes'])}")
        if row.get("window_waits_until"):
            lines.append(f"{where}: the window is open, but paper is not running: it waits for the next window, "
                         f"{_shown_iso(row['window_waits_until'])} ('ibgw-ops up {row['instance']}' starts it now)")
        login = row.get("last_login")
        if isinstance(login, dict) and login.get("at"):
            lines.append(f"{where}: last login {_shown_iso(str(login['at']))}, {login.get('kind')} "
                         f"({login.get('source')})")
        if row.get("good_until"):
            lines.append(
                f"{where}: signed in {_shown_iso(row['signed_in_at'])} "
                f"({human_duration(row['session_age_seconds'])} ago); next weekly reset "
                f"{_shown_iso(row['next_reset'])}; 7-day limit {_shown_iso(row['limit'])}; good until "
                f"{_shown_iso(row['good_until'])}; next planned sign-in {_shown_iso(row['next_signin'])}")
        lines.extend(f"WARNING {where}: {text}" for _, text in row.get("warnings") or [])
        lines.extend(filter(None, [upgrade_line(row)]))
    return "\n".join(lines)


def upgrade_line(row: dict[str, Any]) -> str | None:
    """``upgrade pending: OLD → NEW`` with both digests, when the inventory's image is not what the container runs."""
    configured, pending_id = row.get("image_configured"), row.get("image_pending_id")
    if row.get("container") in (None, "absent") or not configured:
        return None
    if configured == row.get("image") and (not pending_id or pending_id == row.get("image_id")):
        return None
    when = "the next live-signin (or upgrade --now --hard)" if row.get("mode") == "live" else "its next start"
    pending = image_digest({"image_digest": row.get("image_pending_digest"), "image_id": pending_id})
    return (f"{row['instance']} on {row['host']}: upgrade pending: {_version(str(row.get('image')))} → "
            f"{_version(str(configured))} (running {image_digest(row)}, pending {pending}); applies at {when}")


def _version(reference: str) -> str:
    """A reference's tag (10.45.1j), or the reference itself when it has none."""
    name = reference.partition("@")[0]
    tag = name.rpartition(":")[2]
    return tag if ":" in name and "/" not in tag else reference


def _shown_iso(text: str) -> str:
    return shown(datetime.fromisoformat(text))


def human_duration(seconds: int | None) -> str:
    """``3d 4h``, ``2h 5m``, ``7m 12s`` or ``-``."""
    if seconds is None:
        return "-"
    days, rest = divmod(max(seconds, 0), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"


def render_json(rows: Sequence[dict[str, Any]]) -> str:
    """The status rows for machines."""
    return json.dumps(list(rows), indent=2, sort_keys=True)


def render_table(rows: Sequence[dict[str, Any]]) -> str:
    """The status rows for people; a pending restart is flagged after the container state."""
    cells = [[_cell(row, column) for column in COLUMNS] for row in rows]
    widths = [max([len(column)] + [len(line[i]) for line in cells]) for i, column in enumerate(COLUMNS)]
    lines = [[c.upper() for c in COLUMNS], *cells]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def ready_line(row: dict[str, Any]) -> str:
    """What a start reports for one gateway that became ready."""
    accounts = ",".join(row.get("accounts") or []) or "-"
    pending = "; restart pending: a soft restart keeps the configuration, --hard applies it" \
        if row.get("restart_pending") else ""
    return (f"ready: {row['instance']} on {row['host']} at {row['api_host']}:{row['api_port']} "
            f"(accounts {accounts}, server version {row.get('server_version')}{pending})")


def deployed_line(row: dict[str, Any]) -> str:
    """What a deploy reports for one gateway: its container and the image it runs."""
    if row.get("container") == "absent":
        return f"deployed: {row['instance']} on {row['host']}: no container yet; a start runs {row['image']}"
    pending = " (restart pending)" if row.get("restart_pending") else ""
    return (f"deployed: {row['instance']} on {row['host']}: container {row['container']}{pending}, image "
            f"{row['image']}, {image_digest(row)}")


def image_digest(row: dict[str, Any]) -> str:
    """The registry digest of the image a container runs; its image id when it came from no registry (loaded)."""
    if row.get("image_digest"):
        return str(row["image_digest"])
    return f"image id {row['image_id']}" if row.get("image_id") else "-"


def previous_line(previous: dict[str, Any] | None) -> str:
    """How the container that the last start replaced ended, for ``logs --previous``."""
    if not previous:
        return "no previous container kept (none was replaced since this release was deployed)"
    return (f"previous container {previous['id']} ({previous['image']}), started {previous['started_at']}, "
            f"{previous['container']} {previous['finished_at'] or '-'}: {_ending(previous)}")


def notices_line(row: dict[str, Any]) -> str:
    """The connectivity and data farm notices the probe saw, as codes with their meaning."""
    return ", ".join(f"{code} {NOTICES[code]}" for code in dict.fromkeys(row.get("codes") or []) if code in NOTICES)


def _ending(record: dict[str, Any]) -> str:
    """``exit 137 oom, 2 restarts``; ``-`` for a container that never ended."""
    if record.get("exit_code") is None:
        return "-"
    restarts = record.get("restart_count") or 0
    return (f"exit {record['exit_code']}" + (" oom" if record.get("oom_killed") else "")
            + (f", {_restarts(restarts)}" if restarts else ""))


def _restarts(count: int) -> str:
    return f"{count} restart{'' if count == 1 else 's'}"


def _memory(row: dict[str, Any]) -> str:
    """``412M/768M heap``: the container's memory against the Java heap it was given."""
    if row.get("memory_bytes") is None:
        return "-"
    return f"{int(row['memory_bytes']) // 2**20}M/{row.get('java_heap_mb')}M heap"


def _cell(row: dict[str, Any], column: str) -> str:
    shown = _CELLS.get(column)
    return shown(row) if shown else str(row.get(column) or "-")


def _container(row: dict[str, Any]) -> str:
    """The state, how a stopped container ended, how often Docker restarted it, and a pending restart."""
    restarts = row.get("restart_count") or 0
    notes = [_ending(row)] if row.get("exit_code") is not None else [_restarts(restarts)] if restarts else []
    if row.get("restart_pending"):
        notes.append("restart pending")
    return f"{row['container']} ({'; '.join(notes)})" if notes else str(row["container"])


_CELLS: dict[str, Callable[[dict[str, Any]], str]] = {
    "uptime": lambda row: human_duration(row["uptime_seconds"]),
    "accounts": lambda row: ",".join(row.get("accounts") or []) or "-",
    "digest": image_digest,
    "memory": _memory,
    "previous": lambda row: _ending(row["previous"]) if row.get("previous") else "-",
    "container": _container,
}
