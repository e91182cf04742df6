"""Alerts on the VM are delivered, not fired: a spool per instance, retried until each destination took each one.

The destinations are the plain webhook (``alert.post``: the JSON body) and each Apprise URL, sent through Debian's
``apprise`` program with the root-only configuration file that holds the URLs (``TAG=URL`` lines, one tag a URL),
so that no URL is ever in an argument, the environment or output. Every alert is first written into the spool, one
file per destination, then each destination gets its oldest files first; the first failure stops that destination
until its backoff has passed, so it never delays the others and nothing overtakes what it has not taken. The spool
lives under ``/var/lib`` (root only) and survives a reboot; it is bounded in count and age.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta

from .alert import Alert, post
from .host_files import json_object, keep_json, text

# At most this many undelivered alerts per destination, none older than a trading week: the oldest go first.
MAX_ENTRIES = 1000
MAX_AGE = timedelta(days=7)
# A failing destination is tried again after 5 s, then 10, 20, and at most every 30 s: an alert reaches a
# destination that comes back within a tick or two of the watchdog's (30 s by default).
FIRST_BACKOFF = 5.0
MAX_BACKOFF = 30.0
LOCK = ".lock"
WEBHOOK = "webhook"
APPRISE = "apprise"

ALERT_FIELDS = {field.name for field in fields(Alert)}

Run = Callable[[list[str]], tuple[int, str, str]]


@dataclass(frozen=True)
class Destination:
    """Where alerts go, by a key that names no URL (the spool's folder for it), and how one alert is sent there."""

    key: str
    send: Callable[[Alert], str]


def destinations(settings: Mapping[str, object], run: Run) -> list[Destination]:
    """The webhook and each Apprise URL that the root-only files name now (none when a file is absent)."""
    timeout = float(str(settings["webhook_timeout"]))
    found = []
    url = text(str(settings["webhook_file"])).strip()
    if url:
        found.append(Destination(WEBHOOK, lambda alert: post(alert, url, timeout)))
    config = str(settings["apprise_file"])
    for tag in apprise_tags(text(config)):
        found.append(Destination(f"{APPRISE}-{tag}", _apprise_sender(config, tag, run)))
    return found


def apprise_tags(config: str) -> list[str]:
    """The tag of each ``TAG=URL`` line of an Apprise configuration file (text format)."""
    return [line.partition("=")[0].strip() for line in config.splitlines() if "=" in line]


def _apprise_sender(config: str, tag: str, run: Run) -> Callable[[Alert], str]:
    def send(alert: Alert) -> str:
        code, _, _ = run([APPRISE, "--config", config, "--tag", tag, "--title", alert.title(),
                          "--body", alert.message()])
        # Apprise's own output may quote the URL: only its exit code is kept.
        return "" if code == 0 else f"apprise exited {code}"

    return send


class Spool:
    """One instance's undelivered alerts, by destination, and when to try each destination next.

    ``<folder>/<destination key>/<time>-<n>.json`` per alert; ``<folder>/<key>.retry``: failures so far, next try.
    """

    def __init__(self, folder: str, now: datetime) -> None:
        self.folder, self.now = folder, now

    def add(self, alerts: Sequence[Alert], keys: Sequence[str]) -> None:
        """Keep each alert for each destination, in order (the name sorts as the alerts came)."""
        stamp = int(self.now.timestamp() * 1_000_000)
        for key in keys:
            queue = self._queue(key)
            for number, alert in enumerate(alerts):
                keep_json(os.path.join(queue, f"{stamp:020d}-{number:04d}.json"), asdict(alert))

    def flush(self, found: Sequence[Destination]) -> list[str]:
        """Send what each destination has not taken yet; the notes say what failed or was dropped (no URL)."""
        notes = self._forget(found)
        for destination in found:
            notes += self._flush_one(destination)
        return notes

    def _flush_one(self, destination: Destination) -> list[str]:
        queue = self._queue(destination.key)
        entries, notes = self._trim(destination.key, queue)
        retry_file = os.path.join(self.folder, f"{destination.key}.retry")
        retry = json_object(retry_file)
        next_try = str(retry.get("next", ""))
        if not entries or (next_try and self.now < datetime.fromisoformat(next_try)):
            return notes
        for index, name in enumerate(entries):
            path = os.path.join(queue, name)
            record = json_object(path)
            if set(record) != ALERT_FIELDS:
                notes.append(f"dropped an unreadable spool entry for {destination.key}")
            elif failed := destination.send(Alert(**record)):
                failures = int(str(retry.get("failures", 0))) + 1
                wait = min(FIRST_BACKOFF * 2 ** (failures - 1), MAX_BACKOFF)
                keep_json(retry_file, {"failures": failures, "next": (self.now + timedelta(seconds=wait)).isoformat()})
                notes.append(f"the alert destination {destination.key} failed ({failed}); {len(entries) - index} "
                             f"alert(s) kept in the spool, tried again in {wait:.0f} s")
                return notes
            os.unlink(path)
        if os.path.exists(retry_file):
            os.unlink(retry_file)
        return notes

    def _trim(self, key: str, queue: str) -> tuple[list[str], list[str]]:
        """Drop what is past the bounds, oldest first: more than MAX_ENTRIES, or older than MAX_AGE.

        Returns the entries kept, oldest first, and a note when any was dropped.
        """
        entries = sorted(name for name in os.listdir(queue) if name.endswith(".json"))
        oldest = int((self.now - MAX_AGE).timestamp() * 1_000_000)
        fresh = [name for name in entries if int(name.split("-")[0]) >= oldest]
        kept = fresh[max(0, len(fresh) - MAX_ENTRIES):]
        dropped = [name for name in entries if name not in kept]
        for name in dropped:
            os.unlink(os.path.join(queue, name))
        notes = [f"dropped {len(dropped)} undelivered alert(s) for {key}: older than {MAX_AGE.days} days or more "
                 f"than {MAX_ENTRIES}"] if dropped else []
        return kept, notes

    def _forget(self, found: Sequence[Destination]) -> list[str]:
        """A destination no longer set takes its undelivered alerts with it."""
        if not os.path.isdir(self.folder):
            return []
        keys = {destination.key for destination in found}
        notes = []
        for name in sorted(os.listdir(self.folder)):
            key = name.removesuffix(".retry")
            if key in keys or name.startswith("."):
                continue
            path = os.path.join(self.folder, name)
            if os.path.isdir(path):
                left = os.listdir(path)
                for entry in left:
                    os.unlink(os.path.join(path, entry))
                os.rmdir(path)
                if left:
                    notes.append(f"dropped {len(left)} undelivered alert(s) for {key}: no longer a destination")
            else:
                os.unlink(path)
        return notes

    def _queue(self, key: str) -> str:
        queue = os.path.join(self.folder, key)
        os.makedirs(queue, mode=0o700, exist_ok=True)
        return queue


def emit(alerts: Sequence[Alert], settings: Mapping[str, object], program: str, run: Run, now: datetime) -> None:
    """On the VM: each alert's line on stdout (the journal), into the spool, then what the spool holds is sent.

    Called on every tick, with or without new alerts, so what failed before is tried again.
    """
    for alert in alerts:
        print(alert.line(), flush=True)
    found = destinations(settings, run)
    folder = str(settings["spool_dir"])
    os.makedirs(folder, mode=0o700, exist_ok=True)
    # A window's start and the watchdog's tick may deliver for the same instance at once: one at a time.
    with open(os.path.join(folder, LOCK), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        spool = Spool(folder, now)
        spool.add(alerts, [destination.key for destination in found])
        notes = spool.flush(found)
    for note in notes:
        print(f"{program}: {note}", file=sys.stderr, flush=True)
