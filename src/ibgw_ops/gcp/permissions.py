"""Which IAM permission GCP said was missing, and the predefined role that grants it.

A refusal should tell the operator what to ask for: GCP names the permission (in the Compute API's "Required
'<permission>' permission for ..." text, and in an ErrorInfo detail where the API sends one), and the roles below
are the ones docs/provisioning.md lists for each person.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_REQUIRED = re.compile(r"Required '([A-Za-z0-9_.]+)' permission")
# Permission prefixes, most specific first, and the smallest predefined role in docs/provisioning.md granting them.
ROLES: tuple[tuple[str, str], ...] = (
    ("iam.serviceAccounts.actAs", "roles/iam.serviceAccountUser"),
    ("compute.subnetworks.use", "roles/compute.networkUser"),
    ("compute.addresses.use", "roles/compute.networkUser"),
    ("compute.networks.use", "roles/compute.networkUser"),
    ("compute.firewalls.", "roles/compute.securityAdmin"),
    ("compute.instances.", "roles/compute.instanceAdmin.v1"),
    ("compute.disks.", "roles/compute.instanceAdmin.v1"),
    ("compute.images.useReadOnly", "roles/compute.instanceAdmin.v1"),
    ("compute.networks.", "roles/compute.networkAdmin"),
    ("compute.subnetworks.", "roles/compute.networkAdmin"),
    ("compute.addresses.", "roles/compute.networkAdmin"),
    ("compute.routers.", "roles/compute.networkAdmin"),
    ("compute.globalOperations.", "roles/compute.viewer"),
    ("compute.regionOperations.", "roles/compute.viewer"),
    ("compute.zoneOperations.", "roles/compute.viewer"),
    ("secretmanager.versions.access", "roles/secretmanager.secretAccessor"),
    ("iap.tunnelInstances.", "roles/iap.tunnelResourceAccessor"),
)


def missing(text: str, metadata: Mapping[str, Any] | None = None) -> str:
    """The permission a refusal names ("" when it names none): the ErrorInfo's, else the one in its text."""
    if metadata and metadata.get("permission"):
        return str(metadata["permission"])
    found = _REQUIRED.search(text)
    return found[1] if found else ""


def advice(permission: str) -> str:
    """What to grant for a missing permission, as one sentence for the error message."""
    role = next((role for prefix, role in ROLES if permission.startswith(prefix)), "")
    if not role:
        return f"missing permission {permission}: grant a role that includes it (docs/provisioning.md lists them)"
    return f"missing permission {permission}: grant {role} (docs/provisioning.md, 'IAM roles')"
