"""A gateway container as Docker reports it (its state, the image it runs) and the record of the one it replaced.

Read with the docker CLI on the host. Every start of a stopped gateway recreates its container (a pending configuration
applies), and Docker drops a container's logs with it: without the record, the logs of the start that failed, or of the
gateway OOM-killed overnight, are gone by the time anyone looks. Used by the ibgw_status, ibgw_instance and
ibgw_gateway_up modules.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

RunCommand = Callable[..., tuple[int, str, str]]
# The previous container's log is bounded: IBC's start-up is some 200 lines, a day of a chatty gateway megabytes.
PREVIOUS_LOG_MAX_BYTES = 512 * 1024


def inspect(run_command: RunCommand, docker: str | None, container: str) -> dict[str, Any]:
    """State, container id, start and finish times, exit code, OOM kill, restarts, image reference, id and digest.

    "absent" without a container or Docker. ``docker`` is the docker binary (None before Docker is installed, e.g.
    a check-mode run on a new host). Docker resets the exit code when a container starts again, so a running
    container's exit code is 0; its restart count says how often the restart policy brought it back.
    """
    rc, out, _ = run_command([docker, "inspect", "--format", "{{json .}}", container]) if docker else (1, "", "")
    found = json.loads(out) if rc == 0 else {}
    state = found.get("State") or {}
    image, image_id = (found.get("Config") or {}).get("Image", ""), found.get("Image", "")
    running = bool(state.get("Running"))
    return {
        "exists": bool(state),
        "running": running,
        "container": state.get("Status", "absent"),
        "id": str(found.get("Id", ""))[:12],
        "started_at": state.get("StartedAt", ""),
        "finished_at": state.get("FinishedAt", "") if state and not running else "",
        "exit_code": state.get("ExitCode") if state and not running else None,
        "oom_killed": bool(state.get("OOMKilled")),
        "restart_count": int(found.get("RestartCount") or 0),
        "pid": int(state.get("Pid") or 0),
        "image": image,
        "image_id": image_id,
        "image_digest": _digest(run_command, docker, image, image_id) if docker and image_id else "",
    }


def memory_in_use(pid: int, proc: str = "/proc", cgroup: str = "/sys/fs/cgroup") -> int | None:
    """Bytes the container of process ``pid`` uses, as ``docker stats`` counts them (page cache left out).

    Read from the cgroup files (v2, else v1's memory controller), not ``docker stats``, which samples for a second
    or more. None when the process is gone or no memory controller is found.
    """
    try:
        with open(f"{proc}/{pid}/cgroup") as lines:
            memberships = [line.rstrip("\n").split(":", 2) for line in lines]
    except OSError:
        return None
    for controllers, path in ((fields[1], fields[2]) for fields in memberships if len(fields) == 3):
        if controllers == "":
            found = _cgroup_memory(cgroup, path, "memory.current", "inactive_file")
        elif "memory" in controllers.split(","):
            found = _cgroup_memory(f"{cgroup}/memory", path, "memory.usage_in_bytes", "total_inactive_file")
        else:
            continue
        if found is not None:
            return found
    return None


def _cgroup_memory(mount: str, path: str, usage_file: str, inactive_key: str) -> int | None:
    """Usage less inactive page cache, or None.

    Inside a container without a cgroup namespace, the path ``/proc`` gives is the host's, with a prefix this mount
    does not show: its longest suffix that exists here is the cgroup.
    """
    parts = [part for part in path.split("/") if part]
    for start in range(len(parts)):
        directory = "/".join([mount, *parts[start:]])
        try:
            with open(f"{directory}/{usage_file}") as usage:
                used = int(usage.read())
            with open(f"{directory}/memory.stat") as stat:
                fields = dict(line.split() for line in stat if line.count(" ") == 1)
        except (OSError, ValueError):
            continue
        return used - int(fields.get(inactive_key, 0))
    return None


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


def keep_previous(run_command: RunCommand, container: str, log_path: str, state_path: str, lines: int) -> bool:
    """Before a recreate: the container's state and last ``lines`` log lines; False when there is no container.

    Docker keeps stdout and stderr apart; their lines are merged in time order by Docker's timestamps.
    """
    found = inspect(run_command, "docker", container)
    if not found["exists"]:
        return False
    rc, out, err = run_command(["docker", "logs", "--timestamps", "--tail", str(lines), container])
    logged = sorted((out.splitlines() + err.splitlines()) if rc == 0 else [], key=lambda line: line.split(" ", 1)[0])
    kept = {key: found[key] for key in ("id", "image", "container", "started_at", "finished_at", "exit_code",
                                        "oom_killed", "restart_count")}
    _replace(log_path, "".join(f"{line}\n" for line in logged)[-PREVIOUS_LOG_MAX_BYTES:])
    _replace(state_path, json.dumps({**kept, "kept_at": datetime.now(UTC).isoformat(timespec="seconds")},
                                    sort_keys=True) + "\n")
    return True


def read_previous(state_path: str) -> dict[str, Any] | None:
    """The kept state, or None when no container was recreated here yet (or the file is unreadable)."""
    try:
        with open(state_path) as record:
            found = json.load(record)
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _replace(path: str, text: str) -> None:
    """Atomically, readable by root only (and its group): the gateway's log names the account."""
    temporary = f"{path}.tmp"
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640), "w") as target:
        target.write(text)
    os.chmod(temporary, 0o640)
    os.replace(temporary, path)
