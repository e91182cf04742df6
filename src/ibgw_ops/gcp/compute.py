"""The one place that calls the Compute Engine API: clients, scopes, operations, errors.

Mutating calls use the ``*_unary`` methods and wait on their operation through an operations client built with
the same endpoint and credentials, so an overridden endpoint (private endpoint, the tests' fake) serves the
whole exchange. Resources cross this boundary as plain dicts with the client's field names.
"""

from __future__ import annotations

import functools
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from google.api_core import exceptions as api_errors
from google.api_core.client_options import ClientOptions
from google.auth import exceptions as auth_errors
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import compute_v1
from requests import exceptions as http_errors

from ibgw_ops.errors import BadInput, ExitCode, OpsError
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
# How long one call may take before it counts as failed (a VM insert can take a minute).
CALL_TIMEOUT = 60.0
OPERATION_TIMEOUT = 600.0
CREDENTIALS_ENV = "GOOGLE_APPLICATION_CREDENTIALS"


class ComputeApi:
    """The Compute API of one project, region and zone; thread-safe, clients built on first use."""

    def __init__(self, settings: GcpSettings) -> None:
        key_file = os.environ.get(CREDENTIALS_ENV, "")
        if key_file and not settings.compute_endpoint.startswith("http://") and not Path(key_file).is_file():
            # Checked once, before any call: google.auth would fail every parallel call with the generic ADC text.
            raise BadInput(CREDENTIALS_ENV, f"{key_file} is not a file",
                           "a service account key or ADC JSON file, or unset it to use "
                           "'gcloud auth application-default login'")
        self.settings = settings
        self._lock = threading.Lock()
        self._clients: dict[Any, Any] = {}
        self._credentials: Credentials | None = None

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """The resource as a dict, or None when it does not exist."""
        client, message, scope = self._kind(kind)
        try:
            found = self._call(kind, name, "get", lambda: client.get(
                **self._scope(scope), **{SINGULAR[kind]: name}, timeout=CALL_TIMEOUT))
        except api_errors.NotFound:
            return None
        return dict(message.to_dict(found, use_integers_for_enums=False))

    def list(self, kind: str) -> list[dict[str, Any]]:
        """Every resource of a collection in the project (and the region or zone)."""
        client, message, scope = self._kind(kind)
        pages = self._call(kind, "*", "list", lambda: list(client.list(**self._scope(scope), timeout=CALL_TIMEOUT)))
        return [dict(message.to_dict(item, use_integers_for_enums=False)) for item in pages]

    def insert(self, kind: str, body: dict[str, Any]) -> bool:
        """Create the resource; False when it already existed (a retried request, or a concurrent run)."""
        try:
            self.mutate(kind, body["name"], "insert", **{f"{SINGULAR[kind]}_resource": body},
                        request_id=str(uuid.uuid4()))
        except api_errors.Conflict:
            return False
        return True

    def delete(self, kind: str, name: str) -> bool:
        """Delete the resource; False when it was already gone."""
        try:
            self.mutate(kind, name, "delete", **{SINGULAR[kind]: name}, request_id=str(uuid.uuid4()))
        except api_errors.NotFound:
            return False
        return True

    def mutate(self, kind: str, name: str, method: str, **arguments: Any) -> None:
        """Call ``<method>_unary`` of the collection's client (scope added) and wait for its operation.

        Arguments go in as a request mapping: ``request_id`` exists only there, not as a keyword.
        """
        client, _, scope = self._kind(kind)
        call = getattr(client, f"{method}_unary")
        operation = self._call(kind, name, method, lambda: call(request={**self._scope(scope), **arguments},
                                                                timeout=CALL_TIMEOUT))
        self._wait(kind, name, method, scope, operation)

    def _wait(self, kind: str, name: str, method: str, scope: str, operation: Any) -> None:
        waiter = self._client(_OPERATIONS[scope])
        waited = 0.0
        while operation.status != compute_v1.Operation.Status.DONE:
            if waited >= OPERATION_TIMEOUT:
                raise OpsError(f"{SINGULAR[kind]} {name}: {method} still running after {OPERATION_TIMEOUT:.0f} s "
                               f"(operation {operation.name}); run provision again to pick it up")
            operation = self._call(kind, name, method, functools.partial(
                waiter.wait, **self._scope(scope), operation=operation.name, timeout=CALL_TIMEOUT))
            waited += CALL_TIMEOUT
        if operation.error and operation.error.errors:
            details = "; ".join(f"{error.code}: {error.message}" for error in operation.error.errors)
            raise OpsError(f"{SINGULAR[kind]} {name}: {method} failed: {details}")

    def _call(self, kind: str, name: str, method: str, call: Callable[[], Any]) -> Any:
        """Run one request; turn transport and API errors (other than 404 and 409) into an operator's message."""
        try:
            return call()
        except (api_errors.NotFound, api_errors.Conflict):
            raise
        except api_errors.GoogleAPICallError as exc:
            raise OpsError(f"{SINGULAR[kind]} {name}: {method} refused by the Compute API: "
                           f"{exc.code} {exc.message}") from None
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
