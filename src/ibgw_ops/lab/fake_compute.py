"""A local fake of the Compute Engine REST API (v1), for the lab, the tests and the benchmarks.

There is no official Compute Engine emulator, so provisioning code is tested against this fake through the real
``google.cloud.compute_v1`` clients (``client_options={"api_endpoint": fake.url}``, anonymous credentials).
It speaks only the subset ibgw-ops uses (networks, firewalls, subnetworks, addresses, routers, instances and
their operations) but keeps the behaviours that idempotent provisioning code must cope with: full-URL references,
fingerprints and HTTP 412, 404/409/400 errors in Google's JSON format, dependency checks on delete, operations that
run for a while (``slow_next``), GCP's cap on ``operations.wait`` (it answers after two minutes, DONE or not), and
injectable faults, a refused permission among them (named as GCP names it).  Firewalls keep the API's field rules
(allowed or denied; service accounts never with tags; network, direction and action fixed once created); a PATCH
merges, and since the client never sends an empty list, only an update (PUT) can clear one.  An instance takes one
access config per interface and a new service account only while stopped; a Cloud NAT's manual addresses are
reserved external ones, in use by it.  An instance gets GCP's default scheduling and keeps its provisioning model
while running; one with deletion protection refuses a DELETE until the protection is lifted.
Standard library only.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import itertools
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

Json = dict[str, Any]
Key = tuple[str, str, str]  # (project, location, name); location is "" for global, else a region or a zone

API_ROOT = "https://www.googleapis.com/compute/v1/"
PATH_PREFIX = "/compute/v1/projects/"
WAIT_LIMIT = 120.0  # the real operations.wait returns after about two minutes even if not DONE
# What an instance's scheduling holds when the insert leaves it out (GCP's defaults: a VM that stays up).
DEFAULT_SCHEDULING: dict[str, Any] = {"onHostMaintenance": "MIGRATE", "automaticRestart": True, "preemptible": False,
                                      "provisioningModel": "STANDARD"}
# What Spot and preemptible instances get instead: they cannot live-migrate or restart.
SPOT_SCHEDULING: dict[str, Any] = {"onHostMaintenance": "TERMINATE", "automaticRestart": False}
# Scheduling fields only a stopped instance can change.
STOPPED_SCHEDULING = ("provisioningModel", "preemptible")
NAME_RE = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")

SCOPES: dict[str, str] = {
    "networks": "global", "firewalls": "global",
    "subnetworks": "regions", "addresses": "regions", "routers": "regions",
    "instances": "zones",
}
SINGULAR: dict[str, str] = {
    "networks": "network", "firewalls": "firewall", "subnetworks": "subnetwork",
    "addresses": "address", "routers": "router", "instances": "instance",
}
PATCHABLE = frozenset({"networks", "firewalls", "subnetworks", "routers"})
UPDATABLE = frozenset({"firewalls"})  # PUT: the body replaces the resource
CUSTOM_METHODS: dict[str, frozenset[str]] = {
    "instances": frozenset({"setLabels", "setTags", "setMetadata", "start", "stop", "addAccessConfig",
                            "deleteAccessConfig", "setServiceAccount", "setScheduling", "setDeletionProtection"}),
    "addresses": frozenset({"setLabels"}),
    "subnetworks": frozenset({"setPrivateIpGoogleAccess"}),
}
MUTATING = frozenset({"POST", "PATCH", "PUT", "DELETE"})


class ApiError(Exception):
    """An error answered in Google's JSON error format, which the client maps to google.api_core exceptions."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message

    def payload(self) -> Json:
        """The response body, shaped like the real API's."""
        return {"error": {"code": self.code, "message": self.message,
                          "errors": [{"message": self.message, "domain": "global", "reason": self.reason}]}}


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the fake received it: tests assert on what the client really sent."""

    method: str
    path: str
    query: dict[str, str]
    body: Any  # the parsed JSON (a dict for the client's requests), None without a body


@dataclass
class _Match:
    """Something that happens to the next ``remaining`` mutating requests of a method and path suffix."""

    method: str
    path_suffix: str
    remaining: int


@dataclass
class _Fault(_Match):
    status: int
    reason: str
    message: str
    operation_error: str | None


@dataclass
class _Slow(_Match):
    seconds: float


M = TypeVar("M", bound=_Match)


@dataclass(frozen=True)
class _Call:
    """A parsed request on a resource collection."""

    method: str
    path: str
    query: dict[str, str]
    body: Json
    collection: str
    project: str
    location: str
    name: str | None
    custom: str | None


@dataclass
class _Operation:
    """An operation's fixed fields; it reads RUNNING until ``done_at`` (monotonic clock), then DONE."""

    data: Json
    done_at: float
    end_time: str
    error: Json | None

    def view(self, now: float) -> Json:
        out = copy.deepcopy(self.data)
        if now >= self.done_at:
            out.update(status="DONE", progress=100, endTime=self.end_time)
            if self.error is not None:
                out.update(copy.deepcopy(self.error))
        return out


def _timestamp(after: float = 0.0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=after)).isoformat(timespec="milliseconds")


def _fingerprint() -> str:
    return base64.b64encode(os.urandom(8)).decode()


def _zone_region(zone: str) -> str:
    return zone.rsplit("-", 1)[0]


def _scope_path(project: str, kind: str, location: str) -> str:
    return f"projects/{project}/global" if kind == "global" else f"projects/{project}/{kind}/{location}"


def _link(collection: str, key: Key) -> str:
    project, location, name = key
    return f"{API_ROOT}{_scope_path(project, SCOPES[collection], location)}/{collection}/{name}"


def _merge(target: Json, patch: Json) -> None:
    """JSON-merge ``patch`` into ``target``: objects merge recursively, lists and scalars are replaced."""
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(target.get(k), dict):
            _merge(target[k], v)
        else:
            target[k] = copy.deepcopy(v)


def _lookup(resource: Json, dotted: str) -> Any:
    value: Any = resource
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _as_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


_FILTER_TERM = re.compile(
    r"""\(?\s*(?P<field>[A-Za-z_][\w.\-]*)\s*(?P<op>!=|=|:|\beq\b|\bne\b)\s*
        (?P<value>"[^"]*"|'[^']*'|[^\s()]+)\s*\)?""",
    re.VERBOSE,
)


def _filter_matcher(expression: str) -> Callable[[Json], bool]:
    """Compile the list ``filter`` subset the fake honours: ``field = value``, ``!=``, ``:*`` and ``eq``/``ne`` regex.

    Terms may be parenthesised and joined by AND or juxtaposition; anything else is ignored, as allowed for a fake.
    """
    terms = [(m["field"], m["op"], m["value"].strip("\"'")) for m in _FILTER_TERM.finditer(expression)]

    def matches(resource: Json) -> bool:
        for field, op, value in terms:
            actual = _lookup(resource, field)
            text = None if actual is None else _as_text(actual)
            if op == ":":
                ok = text is not None if value == "*" else text == value
            elif op == "=":
                ok = text == value
            elif op == "!=":
                ok = text != value
            elif op == "eq":
                ok = text is not None and re.fullmatch(value, text) is not None
            else:
                ok = text is None or re.fullmatch(value, text) is None
            if not ok:
                return False
        return True

    return matches


def _not_found(what: str) -> ApiError:
    return ApiError(404, "notFound", f"The resource '{what}' was not found")


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid", message)


def _unimplemented(method: str, path: str) -> ApiError:
    return ApiError(501, "notImplemented", f"FakeCompute does not implement {method} {path}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeCompute) -> None:
        super().__init__(address, _Handler)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client reuses its connection pool
    wbufsize = -1  # one write per response: headers and body in separate packets cost 40 ms (Nagle/delayed ACK)
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        status, payload = self.server.fake._handle(self.command, self.path, raw)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        """Serve a read."""
        self._serve()

    def do_POST(self) -> None:
        """Serve an insert, custom method or operation wait."""
        self._serve()

    def do_PATCH(self) -> None:
        """Serve a patch."""
        self._serve()

    def do_PUT(self) -> None:
        """Serve an update."""
        self._serve()

    def do_DELETE(self) -> None:
        """Serve a delete."""
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the fake's own request log is the record."""


class FakeCompute:
    """In-memory Compute Engine behind a local HTTP server; see the module docstring for why and what.

    Resources are stored per collection and keyed by (project, location, name); any project name is accepted.
    Every mutating call applies its change at once and answers an Operation that stays RUNNING for ``delay`` seconds
    (GCP seconds: times ``time_scale`` in real ones), or as long as ``slow_next`` said.
    """

    def __init__(self, delay: float = 0.0, *, time_scale: float = 1.0, host: str = "127.0.0.1",
                 external_ips: tuple[str, ...] = ()) -> None:
        self.delay = delay
        # Real seconds per GCP second, for every duration the fake keeps (delays, the wait's cap): a test can run
        # a two-minute wait in a second and keep GCP's proportions.
        self.time_scale = time_scale
        # Handed out first to EXTERNAL addresses: a test can make "the VM's public IP" a lab VM it can reach.
        self._external_ips = list(external_ips)
        self._host = host
        self._lock = threading.RLock()
        self._resources: dict[str, dict[Key, Json]] = {c: {} for c in SCOPES}
        self._operations: dict[tuple[str, str], _Operation] = {}  # (scope path, name)
        self._request_ids: dict[tuple[str, str], _Operation] = {}
        self._deleted_ids: dict[Key, str] = {}  # id of a resource deleted by the request being answered
        self._faults: list[_Fault] = []
        self._slow: list[_Slow] = []
        self._log: list[LoggedRequest] = []
        self._ids = itertools.count(4_000_000_000_000_000_001, 7919)
        self._public_ips = itertools.count(10)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        """The endpoint to give clients as ``api_endpoint``, e.g. ``http://127.0.0.1:41234``."""
        if self._server is None:
            raise RuntimeError("FakeCompute is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeCompute:
        """Bind a free port and serve from a daemon thread."""
        if self._server is None:
            self._server = _Server((self._host, 0), self)
            self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), name="fake-compute",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> FakeCompute:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ----------------------------------------------------------------- test helpers

    def get(self, collection: str, name: str, *, project: str | None = None, location: str | None = None) -> Json:
        """A copy of a resource as the API would return it; KeyError if absent."""
        with self._lock:
            key = self._find(collection, name, project, location)
            return self._view(collection, key)

    def names(self, collection: str, *, project: str | None = None, location: str | None = None) -> list[str]:
        """Sorted names of the resources in a collection (optionally one project / region / zone)."""
        with self._lock:
            return sorted(n for (p, loc, n) in self._resources[collection]
                          if project in (None, p) and location in (None, loc))

    def create(self, collection: str, body: Json, *, project: str, location: str = "") -> Json:
        """Insert a resource directly, with the same validation and defaults as the API; no request is logged."""
        with self._lock:
            key = self._insert(collection, project, location, copy.deepcopy(body))
            return self._view(collection, key)

    def update(self, collection: str, name: str, *, project: str | None = None, location: str | None = None,
               **fields: Any) -> Json:
        """Overwrite top-level fields directly, as someone in the console would (drift); fingerprints change.

        A firewall keeps the API's rules: what the console cannot set (another direction or action, a forbidden
        combination) is refused here too.
        """
        with self._lock:
            key = self._find(collection, name, project, location)
            resource = self._resources[collection][key]
            if collection == "firewalls":
                _check_firewall_change(resource, {**resource, **fields})
            resource.update(copy.deepcopy(fields))
            if "labels" in fields and "labelFingerprint" not in fields:
                resource["labelFingerprint"] = _fingerprint()
            for nested in ("tags", "metadata"):
                if nested in fields and collection == "instances":
                    resource[nested]["fingerprint"] = _fingerprint()
            if "fingerprint" in resource and "fingerprint" not in fields:
                resource["fingerprint"] = _fingerprint()
            return self._view(collection, key)

    def delete(self, collection: str, name: str, *, project: str | None = None, location: str | None = None) -> None:
        """Remove a resource directly, without dependency checks (someone deleted it behind our back)."""
        with self._lock:
            del self._resources[collection][self._find(collection, name, project, location)]

    def fail_next(self, method: str = "POST", path_suffix: str = "", *, status: int | None = None,
                  reason: str | None = None, message: str | None = None, operation_error: str | None = None,
                  permission: str | None = None, times: int = 1) -> None:
        """Make the next ``times`` matching mutating requests fail without changing state.

        A request matches when its method equals ``method`` and its path (without query) ends with ``path_suffix``.
        Without ``operation_error`` it is answered with HTTP ``status`` (default 503).  With ``operation_error``
        (e.g. ``"QUOTA_EXCEEDED"``) it is accepted, but its Operation ends DONE with that error and
        ``httpErrorStatusCode`` = ``status`` (default 403), and the change is not applied.  With ``permission``
        (e.g. ``"compute.instances.create"``) it is a 403 worded as the Compute API words a missing IAM permission.
        """
        code = status if status is not None else (403 if operation_error or permission else 503)
        if permission:
            message = message or f"Required '{permission}' permission for the resource"
        with self._lock:
            self._faults.append(_Fault(
                method=method.upper(), path_suffix=path_suffix, status=code,
                reason=reason or ("backendError" if code >= 500 else HTTPStatus(code).name.lower()),
                message=message or f"Injected failure ({operation_error or code})",
                operation_error=operation_error, remaining=times,
            ))

    def slow_next(self, method: str = "POST", path_suffix: str = "", *, seconds: float, times: int = 1) -> None:
        """Make the operations of the next ``times`` matching mutating requests run ``seconds`` (GCP seconds).

        Matching as in ``fail_next``. A VM insert can take minutes in GCP: longer than ``operations.wait``'s cap.
        """
        with self._lock:
            self._slow.append(_Slow(method=method.upper(), path_suffix=path_suffix, remaining=times,
                                    seconds=seconds))

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every request received since the last ``reset_log``, in order."""
        with self._lock:
            return list(self._log)

    def mutating_calls(self) -> list[str]:
        """``"METHOD path"`` of resource-changing requests (POST/PATCH/PUT/DELETE except on operations)."""
        with self._lock:
            return [f"{r.method} {r.path}" for r in self._log
                    if r.method in MUTATING and "/operations/" not in r.path]

    def reset_log(self) -> None:
        """Forget the requests received so far."""
        with self._lock:
            self._log.clear()

    # ----------------------------------------------------------------- HTTP entry point

    def _handle(self, method: str, raw_path: str, raw_body: bytes) -> tuple[int, Json]:
        split = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        try:
            body = json.loads(raw_body) if raw_body.strip() else None
        except ValueError:
            body = raw_body.decode(errors="replace")
        with self._lock:
            self._log.append(LoggedRequest(method, split.path, query, copy.deepcopy(body)))
        try:
            if body is not None and not isinstance(body, dict):
                raise ApiError(400, "parseError", "Parse Error: the request body is not a JSON object")
            return 200, self._dispatch(method, split.path, query, body or {})
        except ApiError as e:
            return e.code, e.payload()
        except Exception as e:  # a bug in the fake: make it visible to the test rather than a dropped connection
            return 500, ApiError(500, "internalError", f"FakeCompute failed on {method} {split.path}: {e!r}").payload()

    def _dispatch(self, method: str, path: str, query: dict[str, str], body: Json) -> Json:
        if not path.startswith(PATH_PREFIX):
            raise _unimplemented(method, path)
        parts = path[len(PATH_PREFIX):].strip("/").split("/")
        if len(parts) < 3 or parts[1] not in ("global", "regions", "zones"):
            raise _unimplemented(method, path)
        project, kind = parts[0], parts[1]
        location, rest = ("", parts[2:]) if kind == "global" else (parts[2], parts[3:])
        if not rest:
            raise _unimplemented(method, path)
        if rest[0] == "operations":
            return self._operation_call(method, path, _scope_path(project, kind, location), rest[1:])
        collection = rest[0]
        if SCOPES.get(collection) != kind or len(rest) > 3:
            raise _unimplemented(method, path)
        call = _Call(method, path, query, body, collection, project, location,
                     rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None)
        if method == "GET" and call.custom is None:
            with self._lock:
                if call.name is None:
                    return self._list(collection, project, location, query.get("filter", ""))
                key = (project, location, call.name)
                if key not in self._resources[collection]:
                    raise _not_found(_link(collection, key).removeprefix(API_ROOT))
                return self._view(collection, key)
        if method not in MUTATING:
            raise _unimplemented(method, path)
        return self._mutate(call)

    def _mutate(self, call: _Call) -> Json:
        with self._lock:
            request_id = call.query.get("requestId")
            if request_id and (call.project, request_id) in self._request_ids:  # a retry: same answer, no change
                return self._request_ids[(call.project, request_id)].view(time.monotonic())
            fault = _take(self._faults, call)
            if fault is not None and fault.operation_error is None:
                raise ApiError(fault.status, fault.reason, fault.message)
            slow = _take(self._slow, call)
            if call.name is None:
                if call.method != "POST":
                    raise _unimplemented(call.method, call.path)
                op_type = "insert"
                key = (call.project, call.location, str(call.body.get("name", "")))
                if fault is None:
                    self._insert(call.collection, call.project, call.location, call.body)
            else:
                key = (call.project, call.location, call.name)
                op_type = (call.custom or call.method.lower()) if fault else self._change(call, key)
            target = self._resources[call.collection].get(key)
            operation = self._new_operation(call.collection, key, op_type, target, fault=fault,
                                            seconds=self.delay if slow is None else slow.seconds)
            if request_id:
                self._request_ids[(call.project, request_id)] = operation
            return operation.view(time.monotonic())

    def _change(self, call: _Call, key: Key) -> str:
        """Apply a DELETE, PATCH or custom method to an existing resource; return the operationType."""
        collection, custom = call.collection, call.custom
        if key not in self._resources[collection]:
            raise _not_found(_link(collection, key).removeprefix(API_ROOT))
        if call.method == "DELETE" and custom is None:
            if self._resources[collection][key].get("deletionProtection"):
                raise ApiError(400, "resourceIsProtected", "Invalid resource usage: 'Resource cannot be deleted if "
                               "it's protected against deletion.'")
            self._check_unused(collection, key)
            self._deleted_ids[key] = self._resources[collection].pop(key)["id"]
            return "delete"
        if call.method == "PATCH" and custom is None and collection in PATCHABLE:
            self._patch(collection, key, call.body)
            return "patch"
        if call.method == "PUT" and custom is None and collection in UPDATABLE:
            self._update(collection, key, call.body)
            return "update"
        if call.method == "POST" and custom is not None and custom in CUSTOM_METHODS.get(collection, ()):
            self._custom(collection, key, custom, call)
            return custom
        raise _unimplemented(call.method, call.path)

    # ----------------------------------------------------------------- operations

    def _new_operation(self, collection: str, key: Key, op_type: str, target: Json | None, *,
                       fault: _Fault | None, seconds: float) -> _Operation:
        project, location, _ = key
        kind = SCOPES[collection]
        scope = _scope_path(project, kind, location)
        name = f"operation-{uuid.uuid4()}"
        now = _timestamp()
        data: Json = {
            "kind": "compute#operation", "id": str(next(self._ids)), "name": name, "operationType": op_type,
            "targetLink": _link(collection, key), "status": "RUNNING", "progress": 0, "user": "fake@example.com",
            "insertTime": now, "startTime": now, "selfLink": f"{API_ROOT}{scope}/operations/{name}",
        }
        target_id = target["id"] if target else self._deleted_ids.pop(key, None)
        if target_id:
            data["targetId"] = target_id
        if kind != "global":
            data[kind[:-1]] = f"{API_ROOT}{scope}"
        error = None
        if fault is not None:
            error = {"error": {"errors": [{"code": fault.operation_error, "message": fault.message}]},
                     "httpErrorStatusCode": fault.status, "httpErrorMessage": HTTPStatus(fault.status).name}
        operation = _Operation(data, time.monotonic() + seconds * self.time_scale, _timestamp(seconds), error)
        self._operations[(scope, name)] = operation
        return operation

    def _operation_call(self, method: str, path: str, scope: str, rest: list[str]) -> Json:
        if not rest:
            if method != "GET":
                raise _unimplemented(method, path)
            with self._lock:
                now = time.monotonic()
                items = [op.view(now) for (s, _), op in self._operations.items() if s == scope]
            return {"kind": "compute#operationList", "items": items} if items else {"kind": "compute#operationList"}
        with self._lock:
            operation = self._operations.get((scope, rest[0]))
        if operation is None:
            raise _not_found(f"{scope}/operations/{rest[0]}")
        if len(rest) == 1 and method == "GET":
            return operation.view(time.monotonic())
        if len(rest) == 1 and method == "DELETE":
            with self._lock:
                self._operations.pop((scope, rest[0]), None)
            return {}
        if rest[1:] == ["wait"] and method == "POST":
            time.sleep(max(0.0, min(operation.done_at - time.monotonic(), WAIT_LIMIT * self.time_scale)))
            return operation.view(time.monotonic())
        raise _unimplemented(method, path)

    # ----------------------------------------------------------------- reads

    def _find(self, collection: str, name: str, project: str | None, location: str | None) -> Key:
        keys = [k for k in self._resources[collection]
                if k[2] == name and project in (None, k[0]) and location in (None, k[1])]
        if not keys:
            raise KeyError(f"no {SINGULAR[collection]} named {name!r}")
        if len(keys) > 1:
            raise ValueError(f"several {collection} named {name!r}: pass project= and/or location=")
        return keys[0]

    def _list(self, collection: str, project: str, location: str, expression: str) -> Json:
        matches = _filter_matcher(expression)
        items = [self._view(collection, k) for k in sorted(self._resources[collection], key=lambda k: k[2])
                 if k[:2] == (project, location)]
        items = [item for item in items if matches(item)]
        scope = _scope_path(project, SCOPES[collection], location)
        out: Json = {"kind": f"compute#{SINGULAR[collection]}List", "id": f"projects/{project}/{collection}",
                     "selfLink": f"{API_ROOT}{scope}/{collection}"}
        if items:  # like the real API, an empty list has no "items" at all
            out["items"] = items
        return out

    def _view(self, collection: str, key: Key) -> Json:
        """The stored resource plus fields the real API derives from other resources."""
        out = copy.deepcopy(self._resources[collection][key])
        if collection == "networks":
            subnets = [s["selfLink"] for s in self._resources["subnetworks"].values()
                       if s["network"] == out["selfLink"]]
            if subnets:
                out["subnetworks"] = sorted(subnets)
        elif collection == "addresses":
            users = self._address_users(out)
            out["status"] = "IN_USE" if users else "RESERVED"
            if users:
                out["users"] = users
            else:
                out.pop("users", None)
        return out

    def _address_users(self, address: Json) -> list[str]:
        """SelfLinks of the instances (by IP) and routers (by their NATs' natIps) in its region using it."""
        region_link, ip = address["region"], address.get("address")
        users = [router["selfLink"] for router in self._resources["routers"].values()
                 if router["region"] == region_link
                 and any(address["selfLink"] in nat.get("natIps", []) for nat in router.get("nats", []))]
        for instance in self._resources["instances"].values():
            base, zone = instance["zone"].rsplit("/zones/", 1)
            if f"{base}/regions/{_zone_region(zone)}" != region_link:
                continue
            for nic in instance.get("networkInterfaces", []):
                ips = [nic.get("networkIP")] if address.get("addressType") == "INTERNAL" else \
                    [ac.get("natIP") for ac in nic.get("accessConfigs", [])]
                if ip in ips:
                    users.append(instance["selfLink"])
        return users

    # ----------------------------------------------------------------- references

    def _resolve(self, value: Any, collection: str, project: str, location: str, field: str) -> Key:
        """Turn a full URL, partial path or bare name into a key of an existing resource, else HTTP 400."""
        key = _parse_reference(value, collection, project, location)
        if key is None or key not in self._resources[collection]:
            raise _invalid(f"Invalid value for field 'resource.{field}': '{value}'. "
                           f"The referenced {SINGULAR[collection]} resource cannot be found.")
        return key

    def _check_unused(self, collection: str, key: Key) -> None:
        link = _link(collection, key)
        users: list[str] = []
        if collection == "networks":
            for other in ("subnetworks", "firewalls", "routers"):
                users += [r["selfLink"] for r in self._resources[other].values() if r.get("network") == link]
            users += [i["selfLink"] for i in self._resources["instances"].values()
                      if any(n.get("network") == link for n in i.get("networkInterfaces", []))]
        elif collection == "subnetworks":
            users += [a["selfLink"] for a in self._resources["addresses"].values() if a.get("subnetwork") == link]
            users += [i["selfLink"] for i in self._resources["instances"].values()
                      if any(n.get("subnetwork") == link for n in i.get("networkInterfaces", []))]
        elif collection == "addresses":
            users = self._address_users(self._resources[collection][key])
        if users:
            raise ApiError(400, "resourceInUseByAnotherResource",
                           f"The {SINGULAR[collection]} resource '{link.removeprefix(API_ROOT)}' is already being "
                           f"used by '{users[0].removeprefix(API_ROOT)}'")

    # ----------------------------------------------------------------- inserts

    def _insert(self, collection: str, project: str, location: str, body: Json) -> Key:
        name = body.get("name")
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise _invalid(f"Invalid value for field 'resource.name': '{name}'. Must be a match of regex "
                           f"'{NAME_RE.pattern}'")
        if (SCOPES[collection] == "global") != (location == ""):
            raise _invalid(f"{collection} are {SCOPES[collection]} resources: location must be "
                           f"{'empty' if SCOPES[collection] == 'global' else 'a ' + SCOPES[collection][:-1]}")
        key = (project, location, name)
        if key in self._resources[collection]:
            raise ApiError(409, "alreadyExists",
                           f"The resource '{_link(collection, key).removeprefix(API_ROOT)}' already exists")
        for derived in ("id", "selfLink", "creationTimestamp", "kind", "status", "users", "subnetworks"):
            body.pop(derived, None)
        prepare: Callable[[Json, Key], None] = getattr(self, f"_prepare_{collection}")
        prepare(body, key)
        body.update(id=str(next(self._ids)), creationTimestamp=_timestamp(), selfLink=_link(collection, key),
                    kind=f"compute#{SINGULAR[collection]}")
        if SCOPES[collection] != "global":
            body[SCOPES[collection][:-1]] = f"{API_ROOT}{_scope_path(project, SCOPES[collection], location)}"
        self._resources[collection][key] = body
        return key

    def _prepare_networks(self, body: Json, key: Key) -> None:
        body.setdefault("routingConfig", {}).setdefault("routingMode", "REGIONAL")
        body.setdefault("mtu", 1460)

    def _prepare_firewalls(self, body: Json, key: Key) -> None:
        body["network"] = _link("networks", self._resolve(body.get("network", "global/networks/default"),
                                                          "networks", key[0], "", "network"))
        body.setdefault("direction", "INGRESS")
        body.setdefault("priority", 1000)
        body.setdefault("disabled", False)
        body.setdefault("logConfig", {"enable": False})
        sources = ("sourceRanges", "sourceTags", "sourceServiceAccounts")
        if body["direction"] == "INGRESS" and not any(body.get(s) for s in sources):
            body["sourceRanges"] = ["0.0.0.0/0"]  # the real API's default: open to everyone
        _check_firewall(body)

    def _prepare_subnetworks(self, body: Json, key: Key) -> None:
        network_key = self._resolve(body.get("network"), "networks", key[0], "", "network")
        if "autoCreateSubnetworks" not in self._resources["networks"][network_key]:
            raise _invalid("Invalid resource usage: 'Subnetworks cannot be created in legacy networks'.")
        body["network"] = _link("networks", network_key)
        try:
            cidr = ipaddress.IPv4Network(body.get("ipCidrRange", ""))
        except ValueError as e:
            raise _invalid(f"Invalid value for field 'resource.ipCidrRange': '{body.get('ipCidrRange')}'.") from e
        for other in self._resources["subnetworks"].values():
            if other["network"] == body["network"] and cidr.overlaps(ipaddress.IPv4Network(other["ipCidrRange"])):
                raise _invalid(f"Invalid IPCidrRange: {cidr} conflicts with existing subnetwork "
                               f"'{other['name']}' in region '{key[1]}'.")
        body["gatewayAddress"] = str(cidr.network_address + 1)
        body.setdefault("privateIpGoogleAccess", False)
        body.setdefault("purpose", "PRIVATE")
        body.setdefault("stackType", "IPV4_ONLY")
        body["fingerprint"] = _fingerprint()

    def _prepare_routers(self, body: Json, key: Key) -> None:
        body["network"] = _link("networks", self._resolve(body.get("network"), "networks", key[0], "", "network"))
        for index, nat in enumerate(body.get("nats", [])):
            self._prepare_nat(nat, index, key)

    def _prepare_nat(self, nat: Json, index: int, router: Key) -> None:
        """natIps, the API's way (address selfLinks), each a reserved external address no one else uses."""
        field, option = f"nats[{index}]", nat.get("natIpAllocateOption")
        if option not in ("AUTO_ONLY", "MANUAL_ONLY"):
            raise _invalid(f"Invalid value for field 'resource.{field}.natIpAllocateOption': '{option}'.")
        if (option == "MANUAL_ONLY") != bool(nat.get("natIps")):
            raise _invalid(f"Invalid value for field 'resource.{field}.natIps': MANUAL_ONLY needs natIps, "
                           "AUTO_ONLY takes none.")
        links = []
        for reference in nat.get("natIps", []):
            address = self._resources["addresses"][
                self._resolve(reference, "addresses", router[0], router[1], f"{field}.natIps")]
            others = [user for user in self._address_users(address) if user != _link("routers", router)]
            if address["addressType"] != "EXTERNAL" or others:
                raise _invalid(f"Invalid value for field 'resource.{field}.natIps': '{reference}' is not a free "
                               "external address.")
            links.append(address["selfLink"])
        nat["natIps"] = links

    def _prepare_addresses(self, body: Json, key: Key) -> None:
        body.setdefault("addressType", "EXTERNAL")
        taken = {a.get("address") for k, a in self._resources["addresses"].items() if k[:2] == key[:2]}
        if body["addressType"] == "INTERNAL":
            if not body.get("subnetwork"):
                raise _invalid("Invalid value for field 'resource.subnetwork': an INTERNAL address needs one.")
            subnet_key = self._resolve(body["subnetwork"], "subnetworks", key[0], key[1], "subnetwork")
            subnet = self._resources["subnetworks"][subnet_key]
            body["subnetwork"] = subnet["selfLink"]
            if body.get("address"):
                self._check_in_range(body["address"], subnet, "address")
                if body["address"] in taken:
                    raise _invalid(f"IP address '{body['address']}' is already reserved by another address.")
            else:
                body["address"] = self._free_internal_ip(subnet)
        else:
            body.setdefault("networkTier", "PREMIUM")
            if body.get("address") in taken:
                raise _invalid(f"IP address '{body['address']}' is already reserved by another address.")
            body.setdefault("address", self._new_public_ip())
        body["labelFingerprint"] = _fingerprint()

    def _prepare_instances(self, body: Json, key: Key) -> None:
        project, zone, name = key
        region = _zone_region(zone)
        machine = str(body.get("machineType", ""))
        match = re.search(r"(?:^|/)zones/([^/]+)/machineTypes/([^/]+)$", machine)
        if not match or match[1] != zone:
            raise _invalid(f"Invalid value for field 'resource.machineType': '{machine}'.")
        body["machineType"] = f"{API_ROOT}projects/{project}/zones/{zone}/machineTypes/{match[2]}"
        if not body.get("disks"):
            raise _invalid("Invalid value for field 'resource.disks': at least one disk is required.")
        for index, disk in enumerate(body["disks"]):
            params = disk.pop("initializeParams", None) or {}
            disk_name = params.get("diskName") or (name if index == 0 else f"{name}-{index}")
            disk.setdefault("source", f"{API_ROOT}projects/{project}/zones/{zone}/disks/{disk_name}")
            disk.setdefault("deviceName", disk_name)
            disk.update(index=index, kind="compute#attachedDisk", type="PERSISTENT", mode="READ_WRITE")
            disk.setdefault("diskSizeGb", params.get("diskSizeGb", "10"))
        if not body.get("networkInterfaces"):
            raise _invalid("Invalid value for field 'resource.networkInterfaces': at least one is required.")
        for index, nic in enumerate(body["networkInterfaces"]):
            self._prepare_interface(nic, index, project, region, body)
        body["scheduling"] = _scheduling(body.get("scheduling") or {}, name)
        body.setdefault("deletionProtection", False)
        body["status"] = "RUNNING"
        body["labelFingerprint"] = _fingerprint()
        body["tags"] = {**body.get("tags", {}), "fingerprint": _fingerprint()}
        body["metadata"] = {**body.get("metadata", {}), "kind": "compute#metadata", "fingerprint": _fingerprint()}
        body["fingerprint"] = _fingerprint()

    def _prepare_interface(self, nic: Json, index: int, project: str, region: str, instance: Json) -> None:
        field = f"networkInterfaces[{index}]"
        if not nic.get("subnetwork"):
            raise _invalid(f"Invalid value for field 'resource.{field}.subnetwork': a subnetwork is required.")
        subnet = self._resources["subnetworks"][
            self._resolve(nic["subnetwork"], "subnetworks", project, region, f"{field}.subnetwork")]
        if nic.get("network"):
            network = _link("networks", self._resolve(nic["network"], "networks", project, "", f"{field}.network"))
            if network != subnet["network"]:
                raise _invalid(f"Invalid value for field 'resource.{field}.subnetwork': it is not in the network.")
        nic.update(network=subnet["network"], subnetwork=subnet["selfLink"], name=f"nic{index}",
                   kind="compute#networkInterface", stackType="IPV4_ONLY", fingerprint=_fingerprint())
        if nic.get("networkIP"):
            ip = self._address_ip(nic["networkIP"], project, region, f"{field}.networkIP")
            self._check_in_range(ip, subnet, f"{field}.networkIP")
            for other in self._resources["instances"].values():
                if any(n.get("networkIP") == ip and n.get("network") == subnet["network"]
                       for n in other.get("networkInterfaces", [])):
                    raise _invalid(f"IP address '{ip}' is already being used by '{other['name']}'.")
            nic["networkIP"] = ip
        else:
            nic["networkIP"] = self._free_internal_ip(subnet)
        if len(nic.get("accessConfigs", [])) > 1:
            raise _invalid(f"Invalid value for field 'resource.{field}.accessConfigs': at most one access config "
                           "currently supported.")
        for config in nic.get("accessConfigs", []):
            self._prepare_access_config(config, f"{field}.accessConfigs[0]", project, region)

    def _prepare_access_config(self, config: Json, field: str, project: str, region: str) -> None:
        """Defaults, and the natIP: a new ephemeral one, or a reserved external address of the region not in use."""
        config.setdefault("type", "ONE_TO_ONE_NAT")
        config.setdefault("name", "External NAT")
        config.setdefault("networkTier", "PREMIUM")
        config["kind"] = "compute#accessConfig"
        if not config.get("natIP"):
            config["natIP"] = self._new_public_ip()
            return
        ip = self._address_ip(config["natIP"], project, region, f"{field}.natIP")
        reserved = [a for a in self._resources["addresses"].values()
                    if a.get("address") == ip and a.get("addressType", "EXTERNAL") == "EXTERNAL"
                    and a["region"].endswith(f"/projects/{project}/regions/{region}")]
        if not reserved:
            raise _invalid(f"Invalid value for field 'resource.{field}.natIP': '{ip}'. "
                           "The specified external IP address was not found in region.")
        if self._address_users(reserved[0]):
            raise _invalid(f"External IP address: {ip} is already in-use.")
        config["natIP"] = ip

    def _address_ip(self, value: str, project: str, region: str, field: str) -> str:
        """An IP given as itself or as a reference to an address resource."""
        if "addresses/" not in value and "/" not in value:
            return value
        key = self._resolve(value, "addresses", project, region, field)
        return str(self._resources["addresses"][key]["address"])

    @staticmethod
    def _check_in_range(ip: str, subnet: Json, field: str) -> None:
        cidr = ipaddress.IPv4Network(subnet["ipCidrRange"])
        try:
            inside = ipaddress.IPv4Address(ip) in cidr
        except ValueError:
            inside = False
        if not inside or ip in _reserved_ips(cidr):
            raise _invalid(f"Invalid value for field 'resource.{field}': '{ip}'. Requested internal IP is outside "
                           f"the subnetwork CIDR range or reserved ({cidr}).")

    def _free_internal_ip(self, subnet: Json) -> str:
        cidr = ipaddress.IPv4Network(subnet["ipCidrRange"])
        used = {a.get("address") for a in self._resources["addresses"].values()
                if a.get("subnetwork") == subnet["selfLink"]}
        used |= {n.get("networkIP") for i in self._resources["instances"].values()
                 for n in i.get("networkInterfaces", []) if n.get("subnetwork") == subnet["selfLink"]}
        used |= _reserved_ips(cidr)
        for host in _hosts(cidr):
            if str(host) not in used:
                return str(host)
        raise ApiError(400, "ipSpaceExhausted", f"IP space of '{subnet['selfLink']}' is exhausted.")

    def _new_public_ip(self) -> str:
        if self._external_ips:
            return self._external_ips.pop(0)
        n = next(self._public_ips)
        return f"34.118.{n // 250}.{n % 250 + 1}"

    # ----------------------------------------------------------------- changes

    def _patch(self, collection: str, key: Key, body: Json) -> None:
        resource = self._resources[collection][key]
        if body.get("name", resource["name"]) != resource["name"]:
            raise _invalid("Invalid value for field 'resource.name': the name cannot be changed.")
        if collection == "subnetworks" and "fingerprint" in body and body["fingerprint"] != resource["fingerprint"]:
            raise _precondition("Supplied fingerprint does not match current subnetwork fingerprint.")
        for derived in ("id", "selfLink", "creationTimestamp", "kind", "region", "fingerprint", "subnetworks"):
            body.pop(derived, None)
        if "network" in body:
            body["network"] = _link("networks", self._resolve(body["network"], "networks", key[0], "", "network"))
        changed = copy.deepcopy(resource)
        _merge(changed, body)
        if collection == "firewalls":
            _check_firewall_change(resource, changed)
        elif collection == "routers":
            for index, nat in enumerate(changed.get("nats", [])):
                self._prepare_nat(nat, index, key)
        if "fingerprint" in changed:
            changed["fingerprint"] = _fingerprint()
        self._resources[collection][key] = changed

    def _update(self, collection: str, key: Key, body: Json) -> None:
        """PUT: the body replaces the resource (unset fields take their defaults); name and identity stay."""
        resource = self._resources[collection][key]
        if body.get("name") != resource["name"]:
            raise _invalid("Invalid value for field 'resource.name': the name cannot be changed.")
        for derived in ("id", "selfLink", "creationTimestamp", "kind"):
            body[derived] = resource[derived]
        prepare: Callable[[Json, Key], None] = getattr(self, f"_prepare_{collection}")
        prepare(body, key)
        _check_firewall_change(resource, body)
        self._resources[collection][key] = body

    def _custom(self, collection: str, key: Key, method: str, call: _Call) -> None:
        resource, body = self._resources[collection][key], call.body
        if method == "setLabels":
            if body.get("labelFingerprint") != resource["labelFingerprint"]:
                raise _precondition("Labels fingerprint either invalid or resource labels have changed")
            if body.get("labels"):
                resource["labels"] = dict(body["labels"])
            else:
                resource.pop("labels", None)
            resource["labelFingerprint"] = _fingerprint()
        elif method in ("setTags", "setMetadata"):
            nested = "tags" if method == "setTags" else "metadata"
            current = resource[nested]
            if body.get("fingerprint") != current["fingerprint"]:
                raise _precondition(f"Supplied fingerprint does not match current {nested} fingerprint.")
            current.pop("items", None)
            if body.get("items"):
                current["items"] = copy.deepcopy(body["items"])
            current["fingerprint"] = _fingerprint()
        elif method in ("addAccessConfig", "deleteAccessConfig"):
            self._access_config(resource, key, method, call)
        elif method in ("setServiceAccount", "setScheduling", "setDeletionProtection"):
            self._set_instance_setting(resource, method, call)
        elif method == "setPrivateIpGoogleAccess":
            resource["privateIpGoogleAccess"] = bool(body.get("privateIpGoogleAccess", False))
            resource["fingerprint"] = _fingerprint()
        else:
            resource["status"] = "RUNNING" if method == "start" else "TERMINATED"

    def _access_config(self, instance: Json, key: Key, method: str, call: _Call) -> None:
        """add/deleteAccessConfig on the interface named by ``networkInterface``; one access config per interface."""
        name = call.query.get("networkInterface", "")
        nic = next((n for n in instance["networkInterfaces"] if n["name"] == name), None)
        if nic is None:
            raise _invalid(f"Invalid value for field 'networkInterface': '{name}'. No such network interface.")
        configs = nic.get("accessConfigs", [])
        if method == "addAccessConfig":
            if configs:
                raise _invalid("At most one access config currently supported.")
            config = copy.deepcopy(call.body)
            self._prepare_access_config(config, "resource", key[0], _zone_region(key[1]))
            nic["accessConfigs"] = [config]
        else:
            wanted = call.query.get("accessConfig", "")
            if not any(c["name"] == wanted for c in configs):
                raise _invalid(f"Invalid value for field 'accessConfig': '{wanted}'. No such access config.")
            nic["accessConfigs"] = [c for c in configs if c["name"] != wanted]
            if not nic["accessConfigs"]:
                del nic["accessConfigs"]
        nic["fingerprint"] = _fingerprint()

    def _set_instance_setting(self, instance: Json, method: str, call: _Call) -> None:
        """setServiceAccount, setScheduling (replaces it whole) or setDeletionProtection (a query flag, default on)."""
        if method == "setServiceAccount":
            self._set_service_account(instance, call)
        elif method == "setScheduling":
            instance["scheduling"] = _scheduling(call.body, instance["name"], instance["scheduling"],
                                                 running=instance["status"] != "TERMINATED")
        else:
            instance["deletionProtection"] = call.query.get("deletionProtection", "true") == "true"

    @staticmethod
    def _set_service_account(instance: Json, call: _Call) -> None:
        """Only a stopped VM takes a new service account; no email and no scopes removes it."""
        if instance["status"] != "TERMINATED":
            raise ApiError(400, "resourceNotReady", f"The instance '{instance['name']}' must be stopped to change "
                           "its service account.")
        email, scopes = call.body.get("email"), list(call.body.get("scopes", []))
        if email:
            instance["serviceAccounts"] = [{"email": email, "scopes": scopes}]
        elif scopes:  # the project's default account: its number is not modelled
            raise _unimplemented(call.method, f"{call.path} with scopes but no email")
        else:
            instance.pop("serviceAccounts", None)



def _take(matches: list[M], call: _Call) -> M | None:
    """The first of ``matches`` that applies to the call, counted down (and forgotten once used up)."""
    found = next((m for m in matches if m.method == call.method and call.path.endswith(m.path_suffix)), None)
    if found is not None:
        found.remaining -= 1
        if found.remaining <= 0:
            matches.remove(found)
    return found


def _scheduling(wanted: Json, instance: str, current: Json | None = None, *, running: bool = False) -> Json:
    """An instance's scheduling as GCP keeps it.

    setScheduling replaces it whole, defaults fill what is left out, Spot has its own rules, and a running instance
    keeps its provisioning model (only a stopped one changes it).
    """
    spot = wanted.get("provisioningModel") == "SPOT" or bool(wanted.get("preemptible"))
    scheduling = {**DEFAULT_SCHEDULING, **(SPOT_SCHEDULING if spot else {}), **copy.deepcopy(wanted)}
    if spot and (scheduling["onHostMaintenance"] != "TERMINATE" or scheduling["automaticRestart"]):
        raise _invalid("Invalid value for field 'resource.scheduling': Spot and preemptible instances must "
                           "have onHostMaintenance TERMINATE and automaticRestart false.")
    if running and current is not None:
        changed = [name for name in STOPPED_SCHEDULING if scheduling.get(name) != current.get(name)]
        if changed:
            raise ApiError(400, "resourceNotReady", f"The instance '{instance}' must be stopped to change "
                           f"{', '.join(changed)}.")
    return scheduling


def _check_firewall(rule: Json) -> None:
    """The combinations the API refuses (the Firewall type's field documentation)."""
    if bool(rule.get("allowed")) == bool(rule.get("denied")):
        raise _invalid("Invalid value for field 'resource': a firewall has either 'allowed' or 'denied' rules.")
    tags = rule.get("sourceTags") or rule.get("targetTags")
    if rule.get("sourceServiceAccounts") and tags:
        raise _invalid("Invalid value for field 'resource.sourceServiceAccounts': cannot be used at the same time "
                       "as sourceTags or targetTags.")
    if rule.get("targetServiceAccounts") and tags:
        raise _invalid("Invalid value for field 'resource.targetServiceAccounts': cannot be used at the same time "
                       "as targetTags or sourceTags.")
    if rule.get("direction") not in ("INGRESS", "EGRESS"):
        raise _invalid(f"Invalid value for field 'resource.direction': '{rule.get('direction')}'.")
    if rule["direction"] == "EGRESS" and rule.get("sourceTags"):
        raise _invalid("Invalid value for field 'resource.sourceTags': not allowed for EGRESS rules.")
    log = rule.get("logConfig") or {}
    if "metadata" in log and not log.get("enable"):
        raise _invalid("Invalid value for field 'resource.logConfig.metadata': it can only be specified if logging "
                       "is enabled.")
    if not 0 <= int(rule.get("priority", 1000)) <= 65535:
        raise _invalid(f"Invalid value for field 'resource.priority': '{rule.get('priority')}'.")


def _check_firewall_change(old: Json, new: Json) -> None:
    """A rule's network, direction and action (allow or deny) stay as created; the rest must stay valid."""
    for field in ("network", "direction"):
        if new.get(field) != old.get(field):
            raise _invalid(f"Invalid value for field 'resource.{field}': '{new.get(field)}'. "
                           f"A firewall's {field} cannot be changed.")
    if any(bool(new.get(action)) != bool(old.get(action)) for action in ("allowed", "denied")):
        raise _invalid("Invalid value for field 'resource': a firewall's action (allowed or denied) cannot be "
                       "changed.")
    _check_firewall(new)


def _precondition(message: str) -> ApiError:
    return ApiError(412, "conditionNotMet", message)


def _reserved_ips(cidr: ipaddress.IPv4Network) -> set[str]:
    """Addresses GCE keeps for itself in every subnet: network, gateway, second-to-last and broadcast."""
    return {str(cidr.network_address), str(cidr.network_address + 1), str(cidr.broadcast_address - 1),
            str(cidr.broadcast_address)}


def _hosts(cidr: ipaddress.IPv4Network) -> Iterator[ipaddress.IPv4Address]:
    return (cidr.network_address + i for i in range(2, cidr.num_addresses - 2))


def _parse_reference(value: Any, collection: str, project: str, location: str) -> Key | None:
    """The key a reference names, or None when the text cannot name a resource of ``collection``.

    A reference is a full URL, a partial path (``projects/p/global/networks/n``, ``regions/r/subnetworks/s``) or
    a bare name.
    """
    if not isinstance(value, str) or not value:
        return None
    text = re.sub(r"^(?:https?://[^/]+)?/?(?:compute/(?:v1|beta|alpha)/)?", "", value)
    parts = text.strip("/").split("/")
    if parts[0] == "projects" and len(parts) > 2:
        project, parts = parts[1], parts[2:]
    kind = SCOPES[collection]
    if kind == "global":
        location = ""
        if parts[0] == "global":
            parts = parts[1:]
    elif parts[0] == kind and len(parts) > 2:
        location, parts = parts[1], parts[2:]
    if len(parts) == 2 and parts[0] == collection:
        parts = parts[1:]
    if len(parts) != 1 or not parts[0]:
        return None
    return project, location, parts[0]
