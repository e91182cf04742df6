"""What happened to a gateway between the verbs, named from its own log: each incident an alert of its own kind.

The watchdog hands ``review`` the telling lines (``gateway_log.happenings``) written since the last start by an
ibgw-ops verb or the last tick, so every login in them is one nobody asked for. It names:

- ``restart_full_login``: a restart inside the container (the gateway's daily restart, IBC's cold restart) that did
  not resume the session and began a full login;
- ``2fa_needed``: IBKR sent a 2FA push that no ``live-signin`` waits for, with the deadline to approve it;
- ``login_refused``: IBKR refused a login ("Login failed", "Too many failed login attempts"): IBC would try the
  same password again at once, so the gateway is stopped;
- ``unplanned_start``: the container started without a verb (after a VM reboot, a Docker daemon restart, or by hand);
- ``ibkr_reset``: IBKR's server dropped the gateway ("Connection to server failed"), which IBC answers with a cold
  restart into a full login;
- ``competing_login``: the instance's IBKR user logged in elsewhere while the gateway was logged in, and the gateway
  kept its session (IBC's scenario 5): the other login, a person or another deployment, was ended;
- ``api_read_only``: IBC reports the API read-only (orders fail with error 321) while the instance did not ask for it.

It also records each login in the ledger (full or resumed, and what started it) and says when live's weekly session
ended (a full login replaced it) or began again (that login completed: someone approved the push).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from . import gateway_log as log
from .login_ledger import FULL, RESUMED

RESTART_FULL_LOGIN = "restart_full_login"
TWOFA_NEEDED = "2fa_needed"
LOGIN_REFUSED = "login_refused"
UNPLANNED_START = "unplanned_start"
IBKR_RESET = "ibkr_reset"
API_READ_ONLY = "api_read_only"
COMPETING_LOGIN = "competing_login"
# What led to a login when no line said: the container's start (a verb's start is accounted for by the verb).
DEFAULT_CAUSE = "a start of the container"
DROPPED = "IBKR's server dropped the gateway"


@dataclass(frozen=True)
class Event:
    """An alert to raise: its kind and detail."""

    kind: str
    detail: str


@dataclass
class Review:
    """What the lines told: alerts, logins (at, kind, source), live's session, and whether to stop the gateway.

    ``session`` is None when live's weekly session is as it was, "" when it ended, else when a new one began.
    """

    events: list[Event] = field(default_factory=list)
    logins: list[tuple[str, str, str]] = field(default_factory=list)
    session: str | None = None
    stop: bool = False
    pending: tuple[str, str, str] = ("", "", "")


def review(happenings: list[log.Happening], settings: dict[str, Any], start: tuple[str, str] = ("", ""),
           pending: tuple[str, str, str] = ("", "", "")) -> Review:
    """Walk the lines in order.

    ``start`` is the Docker time and the cause of the container's own start in this stretch when no verb started it
    (("", "") if none): the lines before it are the old run's end. ``pending`` is the cause, the kind and the
    gateway's exit (Docker time, "" if none) of a login the last stretch left in progress (a 2FA push that may be
    approved later, or a restart whose next lines a later tick reads), and ``Review.pending`` the one this stretch
    leaves.
    """
    started_at, start_cause = start
    walk = _Walk(settings, "", pending)
    for happening in happenings:
        if start_cause and happening.at >= started_at and not walk.start_cause:
            walk = _Walk(settings, start_cause, ("", "", ""), walk.result)
        handler = getattr(walk, f"on_{happening.kind}", None)
        if handler is not None:
            handler(_shown(happening.at), happening)
    walk.result.pending = ((walk.cause, walk.kind, walk.restarted) if walk.kind or walk.cause != DEFAULT_CAUSE
                           else ("", "", ""))
    return walk.result


class _Walk:
    """The course of the logins through the lines: what led to the next one, and whether it is full or resumed."""

    def __init__(self, settings: dict[str, Any], start_cause: str, pending: tuple[str, str, str],
                 result: Review | None = None) -> None:
        self.settings = settings
        self.live = settings["mode"] == "live"
        self.result = result or Review()
        self.start_cause = start_cause
        self.cause = start_cause or pending[0] or DEFAULT_CAUSE
        self.kind = "" if start_cause else pending[1]
        # The exit this login follows: a later tick may read "autorestart file not found" after it (on_not_resuming).
        self.restarted = "" if start_cause else pending[2]
        self.refused = self.alerted_full = False

    def alert(self, kind: str, detail: str) -> None:
        self.result.events.append(Event(kind, detail))

    def on_java_ended(self, at: str, happening: log.Happening) -> None:
        self.restarted, self.kind, self.alerted_full = at, "", False
        if not self.cause.startswith(DROPPED):  # the exit that IBC's cold restart after the drop makes
            self.cause = f"the gateway's exit at {at} ({happening.text}; 0 is its daily auto-restart or IBC RESTART)"

    def on_resuming(self, at: str, happening: log.Happening) -> None:
        self.kind = RESUMED

    def on_not_resuming(self, at: str, happening: log.Happening) -> None:
        if self.restarted:
            self.cause = (f"the gateway's exit at {self.restarted}, after which the session could not be resumed "
                          "(ibcstart.sh: autorestart file not found)")

    def on_cold_restart(self, at: str, happening: log.Happening) -> None:
        if not self.refused:
            self.cause = f"IBC's cold restart at {at}" + (f" after {self.cause}" if self.cause.startswith(DROPPED)
                                                         else "")

    def on_server_failed(self, at: str, happening: log.Happening) -> None:
        # The cause carries the drop to the cold restart, also when a later tick reads that line (Review.pending).
        self.cause = f"{DROPPED} at {at}"
        self.alert(IBKR_RESET, f"IBC: {happening.text} (at {at}): IBKR's server dropped the session; IBC "
                               "cold-restarts into a full login" + (", a 2FA push" if self.live else ""))

    def on_full_login(self, at: str, happening: log.Happening) -> None:
        self.kind = FULL
        if self.live:
            self.result.session = ""
        if self.refused or self.alerted_full or (self.start_cause and not self.restarted):
            return
        self.alerted_full = True
        self.alert(RESTART_FULL_LOGIN, f"a full login began at {at} after {self.cause}: "
                   + ("the weekly session has ended; a 2FA push follows" if self.live else
                      "paper holds the login the trader shares again"))

    def on_twofa_pending(self, at: str, happening: log.Happening) -> None:
        deadline = log.moment(happening.at) + timedelta(seconds=float(self.settings["twofa_timeout"]))
        self.alert(TWOFA_NEEDED, f"a 2FA approval is needed now: IBKR sent a push at {at} for a full login after "
                                 f"{self.cause}; approve it in IBKR Mobile by "
                                 f"{deadline.isoformat(timespec='seconds')}, or live stays logged out (IBC sends "
                                 "no other)")

    def on_logged_in(self, at: str, happening: log.Happening) -> None:
        kind = self.kind or FULL
        self.result.logins.append((at, kind, self.cause))
        if self.live and kind == FULL:
            self.result.session = at
        self.kind, self.refused, self.alerted_full = "", False, False
        self.cause = DEFAULT_CAUSE

    def on_login_failed(self, at: str, happening: log.Happening) -> None:
        if self.refused:
            return
        self.refused = self.result.stop = True
        self.alert(LOGIN_REFUSED, f"IBKR refused the login at {at} ({log.explain(happening.text)}); the gateway is "
                                  "stopped so IBC does not try the same password again: check the password and the "
                                  "account, then start it")

    def on_session_taken(self, at: str, happening: log.Happening) -> None:
        if self.live:
            self.result.session = ""

    def on_session_kept(self, at: str, happening: log.Happening) -> None:
        self.alert(COMPETING_LOGIN, f"IBC: {happening.text} (at {at}): the instance's IBKR user logged in elsewhere; "
                                    "the gateway kept its session (ExistingSessionDetectedAction primary) and ended "
                                    "the other login")

    def on_read_only(self, at: str, happening: log.Happening) -> None:
        wanted = str(self.settings["read_only_api"]).lower()
        if wanted != "yes" and (happening.kind == log.READ_ONLY or wanted == "no"):
            self.alert(API_READ_ONLY, f"IBC: {happening.text} (at {at}): the API may take no orders (error 321) "
                                      f"although ib_gateway_read_only_api is '{wanted or 'unset'}'")

    on_read_only_unknown = on_read_only


def _shown(docker_time: str) -> str:
    """Docker's stamp as the alerts show times: ISO 8601 to the second, UTC."""
    return log.moment(docker_time).isoformat(timespec="seconds")
