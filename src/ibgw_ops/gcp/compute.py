"""The one place that calls the Compute Engine API: clients, scopes, operations, errors.

Mutating calls use the ``*_unary`` methods and wait on their operation through an operations client built with
the same endpoint and credentials, so an overridden endpoint (private endpoint, the tests' fake) serves the
whole exchange. Resources cross this boundary as plain dicts with the client's field names.

Waiting follows GCP: ``operations.wait`` answers after at most two minutes, DONE or not, so the client's timeout
is longer than that and a RUNNING answer is waited on again, until the operation's own deadline; a slow operation
is never mistaken for an unreachable API. The client retries no mutating call, so this module does: on 429 and
5xx answers and lost connections, with the same request id (GCP applies a request id once), backing off, a
bounded number of times, each retry announced.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from google.api_core import exceptions as api_errors
from google.api_core.client_options import ClientOptions
from google.auth import exceptions as auth_errors
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import compute_v1
from requests import exceptions as http_errors

from ibgw_ops import environment
from ibgw_ops.errors import BadInput, ExitCode, OpsError
from ibgw_ops.gcp import permissions
from ibgw_ops.gcp.desired import ADDRESSES, FIREWALLS, INSTANCES, NETWORKS, ROUTERS, SINGULAR, SUBNETWORKS
from ibgw_ops.gcp.settings import GcpSettings

# Per collection: client class, message class, scope ("" global, region, zone).
_KINDS: dict[str, tuple[Any, Any, str]] = {
    NETWORKS: (compute_v1.NetworksClient, compute_v1.Network, ""),
    SUBNETWORKS: (compute_v1.SubnetworksClient, compute_v1.Subnetwork, "region"),
    ADDRESSES: (compute_v1.AddressesClient, compute_v1.Address, "region"),
    FIREWALLS: (compute_v1.FirewallsClient, compute_v1.Firewall, ""),
    ROUTERS: (compute_v1.RoutersClient, compute_v1.Router, "region"),
    INSTANCES: (compute_v1.InstancesClient, compute_v1.Instance, "zone"),
}
_OPERATIONS = {"": compute_v1.GlobalOperationsClient, "region": compute_v1.RegionOperationsClient,
               "zone": compute_v1.ZoneOperationsClient}
CREDENTIALS_ENV = "GOOGLE_APPLICATION_CREDENTIALS"
# Answers worth another try with the same request id: rate limits, server errors, a connection lost on the way.
RETRIED = (api_errors.TooManyRequests, api_errors.InternalServerError, api_errors.BadGateway,
           api_errors.ServiceUnavailable, api_errors.GatewayTimeout, http_errors.ConnectionError,
           http_errors.Timeout)


@dataclass(frozen=True)
class Timing:
    """How long calls may take and how retries back off (seconds): one value, so a test can run GCP's clock fast."""

    call: float = 60.0  # one request other than a wait
    server_wait: float = 120.0  # GCP's operations.wait answers after at most this long, DONE or not
    operation: float = 1800.0  # an operation still RUNNING after this is reported (it goes on in GCP)
    first_backoff: float = 1.0
    max_backoff: float = 30.0
    attempts: int = 6  # calls of one request at most, the first included

    @property
    def wait(self) -> float:
        """The client's timeout for one wait: longer than the server's, or a slow operation becomes a timeout."""
        return self.server_wait + self.call / 2

    def scaled(self, factor: float) -> Timing:
        """Every duration times ``factor`` (the attempts stay)."""
        return replace(self, call=self.call * factor, server_wait=self.server_wait * factor,
                       operation=self.operation * factor, first_backoff=self.first_backoff * factor,
                       max_backoff=self.max_backoff * factor)


TIMING = Timing()


def _announce(message: str) -> None:
    print(f"ibgw-ops: {message}", file=sys.stderr, flush=True)


class ComputeApi:
    """The Compute API of one project, region and zone; thread-safe, clients built on first use."""

    def __init__(self, settings: GcpSettings, *, timing: Timing | None = None,
                 sleep: Callable[[float], None] = time.sleep, notice: Callable[[str], None] = _announce) -> None:
        """``timing``: the module's ``TIMING`` if None; ``sleep`` pauses between retries, ``notice`` hears them."""
        key_file = environment.value(CREDENTIALS_ENV) or ""
        if key_file and not settings.compute_endpoint.startswith("http://") and not Path(key_file).is_file():
            # Checked once, before any call: google.auth would fail every parallel call with the generic ADC text.
            raise BadInput(CREDENTIALS_ENV, f"{key_file} is not a file",
                           f"{environment.ALLOWED[CREDENTIALS_ENV]}, or unset it to use "
                           "'gcloud auth application-default login'")
        self.settings = settings
        self.timing = timing or TIMING
        self._sleep = sleep
        self._notice = notice
        self._lock = threading.Lock()
        self._clients: dict[Any, Any] = {}
        self._credentials: Credentials | None = None

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """The resource as a dict, or None when it does not exist."""
        client, message, scope = self._kind(kind)
        try:
            found = self._call(kind, name, "get", lambda: client.get(
                **self._scope(scope), **{SINGULAR[kind]: name}, timeout=self.timing.call))
        except api_errors.NotFound:
            return None
        return dict(message.to_dict(found, use_integers_for_enums=False))

    def list(self, kind: str) -> list[dict[str, Any]]:
        """Every resource of a collection in the project (and the region or zone)."""
        client, message, scope = self._kind(kind)
        pages = self._call(kind, "*", "list", lambda: list(client.list(**self._scope(scope),
                                                                       timeout=self.timing.call)))
        return [dict(message.to_dict(item, use_integers_for_enums=False)) for item in pages]

    def insert(self, kind: str, body: dict[str, Any]) -> bool:
        """Create the resource; False when it already existed (a retried request, or a concurrent run)."""
        try:
            self.mutate(kind, body["name"], "insert", **{f"{SINGULAR[kind]}_resource": body})
        except api_errors.Conflict:
            return False
        return True

    def delete(self, kind: str, name: str) -> bool:
        """Delete the resource; False when it was already gone."""
        try:
            self.mutate(kind, name, "delete", **{SINGULAR[kind]: name})
        except api_errors.NotFound:
            return False
        return True

    def mutate(self, kind: str, name: str, method: str, **arguments: Any) -> None:
        """Call ``<method>_unary`` of the collection's client (scope added) and wait for its operation.

        Arguments go in as a request mapping: ``request_id`` exists only there, not as a keyword. Every call of
        this request, retries included, carries one request id, so GCP applies it once.
        """
        client, _, scope = self._kind(kind)
        call = getattr(client, f"{method}_unary")
        request = {**self._scope(scope), "request_id": str(uuid.uuid4()), **arguments}
        operation = self._call(kind, name, method, self._retried(
            f"{SINGULAR[kind]} {name}: {method}", lambda: call(request=request, timeout=self.timing.call)))
        self._wait(kind, name, method, scope, operation)

    def _wait(self, kind: str, name: str, method: str, scope: str, operation: Any) -> None:
        """Wait until the operation is DONE: each wait answers within GCP's cap, RUNNING means wait again."""
        waiter = self._client(_OPERATIONS[scope])
        deadline = time.monotonic() + self.timing.operation
        while operation.status != compute_v1.Operation.Status.DONE:
            if time.monotonic() >= deadline:
                raise OpsError(f"{SINGULAR[kind]} {name}: {method} still running after "
                               f"{self.timing.operation:.0f} s (operation {operation.name}); run provision again "
                               "to pick it up")
            operation = self._call(kind, name, method, self._retried(
                f"{SINGULAR[kind]} {name}: waiting for {method}", functools.partial(
                    waiter.wait, **self._scope(scope), operation=operation.name, timeout=self.timing.wait)))
        if operation.error and operation.error.errors:
            details = "; ".join(f"{error.code}: {error.message}" for error in operation.error.errors)
            permission = permissions.missing(details)
            hint = f"; {permissions.advice(permission)}" if permission else ""
            raise OpsError(f"{SINGULAR[kind]} {name}: {method} failed: {details}{hint}")

    def _retried(self, what: str, call: Callable[[], Any]) -> Callable[[], Any]:
        """``call``, made again on a retried answer after a doubling pause, ``timing.attempts`` times at most."""
        def attempt() -> Any:
            pause = self.timing.first_backoff
            for number in range(1, self.timing.attempts):
                try:
                    return call()
                except RETRIED as exc:
                    self._notice(f"{what}: {_answer(exc)}; retry {number} of {self.timing.attempts - 1} in "
                                 f"{pause:g} s, same request id")
                self._sleep(pause)
                pause = min(pause * 2, self.timing.max_backoff)
            return call()
        return attempt

    def _call(self, kind: str, name: str, method: str, call: Callable[[], Any]) -> Any:
        """Run one request; turn transport and API errors (other than 404 and 409) into an operator's message."""
        try:
            return call()
        except (api_errors.NotFound, api_errors.Conflict):
            raise
        except api_errors.GoogleAPICallError as exc:
            permission = permissions.missing(exc.message, exc.metadata)
            hint = f"; {permissions.advice(permission)}" if permission else ""
            raise OpsError(f"{SINGULAR[kind]} {name}: {method} refused by the Compute API: "
                           f"{exc.code} {exc.message}{hint}") from None
        except (http_errors.ConnectionError, http_errors.Timeout) as exc:
            raise OpsError(f"cannot reach the Compute API at {self._endpoint_name()}: {type(exc).__name__}",
                           ExitCode.UNREACHABLE) from None

    def _kind(self, kind: str) -> tuple[Any, Any, str]:
        client_class, message, scope = _KINDS[kind]
        return self._client(client_class), message, scope

    def _scope(self, scope: str) -> dict[str, str]:
        found = {"project": self.settings.project}
        if scope:
            found[scope] = getattr(self.settings, scope)
        return found

    def _client(self, client_class: Any) -> Any:
        with self._lock:
            if client_class not in self._clients:
                options = ClientOptions(api_endpoint=self.settings.compute_endpoint or None)
                self._clients[client_class] = client_class(credentials=self._credentials_once(),
                                                           client_options=options)
            return self._clients[client_class]

    def _credentials_once(self) -> Credentials | None:
        """Application Default Credentials; none over plain http (a token never travels unencrypted)."""
        if self.settings.compute_endpoint.startswith("http://"):
            return AnonymousCredentials()  # type: ignore[no-untyped-call]
        if self._credentials is None:
            import google.auth  # noqa: PLC0415 - only the cloud verbs pay for it

            try:
                self._credentials, _ = google.auth.default(
                    scopes=["https://www.googleapis.com/auth/cloud-platform"])
            except auth_errors.DefaultCredentialsError:
                raise OpsError("no Application Default Credentials: run 'gcloud auth application-default login' "
                               "or set GOOGLE_APPLICATION_CREDENTIALS", ExitCode.BAD_INPUT) from None
        return self._credentials

    def _endpoint_name(self) -> str:
        return self.settings.compute_endpoint or "the default endpoint"


def _answer(exc: Exception) -> str:
    """A retried answer in a few words: its HTTP status, if any, and its class (ServiceUnavailable, ReadTimeout)."""
    code = exc.code if isinstance(exc, api_errors.GoogleAPICallError) else None
    return f"{code} {type(exc).__name__}" if code else type(exc).__name__
