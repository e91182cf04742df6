"""A gateway container as Docker reports it: its state and the image it runs, read with the docker CLI on the host.

Used by the ibgw_status and ibgw_instance modules on the VM.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

RunCommand = Callable[..., tuple[int, str, str]]


def inspect(run_command: RunCommand, docker: str | None, container: str) -> dict[str, Any]:
    """State, start time, image reference, image id and registry digest; "absent" without a container or Docker.

    ``docker`` is the docker binary (None before Docker is installed, e.g. a check-mode run on a new host).
    """
    rc, out, _ = run_command(
        [docker, "inspect", "--format", "{{json .State}}\t{{.Config.Image}}\t{{.Image}}", container]
    ) if docker else (1, "", "")
    state_json, image, image_id = out.rstrip("\n").split("\t", 2) if rc == 0 else ("{}", "", "")
    state = json.loads(state_json)
    running = bool(state.get("Running"))
    return {
        "exists": bool(state),
        "running": running,
        "container": state.get("Status", "absent"),
        "started_at": state.get("StartedAt", "") if running else "",
        "image": image,
        "image_id": image_id,
        "image_digest": _digest(run_command, docker, image, image_id) if docker and image_id else "",
    }


def configured(run_command: RunCommand, docker: str | None, reference: str) -> dict[str, str]:
    """The image id and registry digest ``reference`` names on the host (what the next start runs); "" when absent."""
    rc, out, _ = run_command([docker, "image", "inspect", "--format", "{{.Id}}", reference]) if docker else (1, "", "")
    image_id = out.strip() if rc == 0 else ""
    return {"image_id": image_id,
            "image_digest": _digest(run_command, docker, reference, image_id) if docker and image_id else ""}


def _digest(run_command: RunCommand, docker: str, reference: str, image_id: str) -> str:
    """The registry digest (sha256:...) of the container's image: its repository's, else the first one.

    "" for an image that never came from a registry (built, or loaded from an archive).
    """
    rc, out, _ = run_command([docker, "image", "inspect", "--format", "{{json .RepoDigests}}", image_id])
    digests = (json.loads(out) or []) if rc == 0 else []
    repository = repository_of(reference)
    chosen = next((d for d in digests if d.partition("@")[0] == repository), digests[0] if digests else "")
    return str(chosen).partition("@")[2]


def repository_of(reference: str) -> str:
    """An image reference without its tag and digest."""
    name = reference.partition("@")[0]
    head, colon, tag = name.rpartition(":")
    return head if colon and "/" not in tag else name
