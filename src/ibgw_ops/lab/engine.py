"""The local Docker engine the lab runs on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ibgw_ops.errors import ExitCode, OpsError

if TYPE_CHECKING:
    import docker

LABEL = "io.ibgw-ops.lab"
IMAGE_LABEL = "io.ibgw-ops.lab-image"


def connect() -> docker.DockerClient:
    """A client for the local engine, or a message that says how to get one."""
    import docker  # noqa: PLC0415 - heavy import, only verbs that use the engine pay for it
    import docker.errors  # noqa: PLC0415

    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except docker.errors.DockerException as exc:
        raise OpsError(
            f"no Docker engine answers ({exc}); scripts/setup installs and starts one",
            ExitCode.UNREACHABLE,
        ) from exc
    return client
