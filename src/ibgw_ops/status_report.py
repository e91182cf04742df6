"""How the verbs show gateways: status rows as a table or JSON, and one line per ready gateway."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

COLUMNS = ("host", "instance", "mode", "container", "uptime", "probe", "accounts", "image")


def with_uptime(rows: Sequence[dict[str, Any]], now: datetime | None = None) -> list[dict[str, Any]]:
    """Rows sorted by host and instance, each with ``uptime_seconds`` (None when not running)."""
    moment = now or datetime.now(UTC)
    result = []
    for row in sorted(rows, key=lambda r: (r["host"], r["instance"])):
        started = parse_docker_time(row.get("started_at") or "")
        uptime = int((moment - started).total_seconds()) if started else None
        result.append({**row, "uptime_seconds": uptime})
    return result


def parse_docker_time(text: str) -> datetime | None:
    """Docker's RFC 3339 time with nanoseconds; None for an empty or zero time."""
    if not text or text.startswith("0001-"):
        return None
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    return datetime.fromisoformat(trimmed)


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
    return (f"ready: {row['instance']} on {row['host']} at {row['api_host']}:{row['api_port']} "
            f"(accounts {accounts}, server version {row.get('server_version')})")


def _cell(row: dict[str, Any], column: str) -> str:
    if column == "uptime":
        return human_duration(row["uptime_seconds"])
    if column == "accounts":
        return ",".join(row.get("accounts") or []) or "-"
    if column == "container" and row.get("restart_pending"):
        return f"{row['container']} (restart pending)"
    return str(row.get(column) or "-")
