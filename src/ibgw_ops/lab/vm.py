"""The lab VM: a systemd container on the local engine that looks like a fresh GCE Debian 13 instance.

It has its own IP on a private bridge, sshd with a per-VM host key, root login with a key that ``lab up``
generates, python3, and no Docker. ``docker restart`` on it is a reboot (systemd halts on SIGRTMIN+3). The controller,
on the bridge's gateway address, plays the Cloud Run jobs that reach the API ports on the VM's address.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ibgw_ops import inventory
from ibgw_ops.errors import ExitCode, OpsError
from ibgw_ops.lab import images
from ibgw_ops.lab.engine import LABEL, connect
from ibgw_ops.paths import data_dir, state_dir

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

NAME_ENV = "IBGW_OPS_LAB_NAME"
SSH_WAIT_SECONDS = 90.0


def lab_name() -> str:
    """The lab VM's name: container, hostname, network and inventory host (tests use their own)."""
    return os.environ.get(NAME_ENV) or "ibgw-lab"


@dataclass(frozen=True)
class LabFiles:
    """The files ``lab up`` keeps under the state directory (all removed by ``lab down``)."""

    root: Path

    @classmethod
    def default(cls) -> LabFiles:
        """The lab's files under the current state directory."""
        return cls(state_dir() / "lab")

    @property
    def client_key(self) -> Path:
        """Root's login key for the VM (0600)."""
        return self.root / "id_ed25519"

    @property
    def host_key(self) -> Path:
        """The VM's sshd host key, made here so the controller knows it before the first connection."""
        return self.root / "ssh_host_ed25519_key"

    @property
    def known_hosts(self) -> Path:
        """Known hosts file pinning the VM's host key (host key checking stays on)."""
        return self.root / "known_hosts"

    @property
    def credentials(self) -> Path:
        """Rehearsal gateway credentials (0600) that the stand-in accepts; never a real IBKR login."""
        return self.root / "credentials.yml"

    @property
    def images(self) -> Path:
        """Image archives the roles copy to the VM and ``docker load``."""
        return self.root / "images"


@dataclass(frozen=True)
class LabStatus:
    """What ``lab status`` reports."""

    state: str
    address: str | None
    image: str | None
    inventory: Path | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"state": self.state, "address": self.address, "image": self.image,
                "inventory": str(self.inventory) if self.inventory else None}


def ssh_options(files: LabFiles, *, interactive: bool = False) -> list[str]:
    """SSH options for the lab VM: only its own key, its pinned host key, and no prompts unless interactive."""
    options = {"IdentitiesOnly": "yes", "UserKnownHostsFile": str(files.known_hosts),
               "StrictHostKeyChecking": "yes", "ConnectTimeout": "5"}
    if not interactive:
        options["BatchMode"] = "yes"
    return [word for key, value in options.items() for word in ("-o", f"{key}={value}")]


def up(log: images.Log) -> LabStatus:
    """Create or start the lab VM, wait for SSH, and write its inventory; a second call changes nothing."""
    client = connect()
    files = LabFiles.default()
    images.ensure_rootfs_images(client, log)
    _ensure_keys(files)
    _ensure_credentials(files)
    container = _ensure_container(client, files, log)
    address = _address(container)
    _write_known_hosts(files, address)
    _wait_for_ssh(files, address)
    standin, archive = images.ensure_standin(client, files.images, log)
    controller = controller_address(client, lab_name())
    inventory_dir = inventory.lab_inventory_dir()
    host_vars = {
        "ansible_host": address,
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(files.client_key),
        "ansible_ssh_common_args": " ".join(ssh_options(files)),
        "ibgw_internal_ip": address,
        # What provision writes for a GCE VM (gcp/host_inventory.py): the API ports on the internal address, and
        # the host firewall admitting only the Cloud Run jobs' egress, played here by the controller.
        "ib_gateway_bind_address": address,
        "host_firewall_api_source_ranges": [f"{controller}/32"],
        "ibgw_lab_standin_image": standin,
        "ibgw_lab_standin_archive": str(archive),
        "ibgw_lab_credentials_file": str(files.credentials),
    }
    if inventory.write_static(inventory_dir, {lab_name(): host_vars}, "Written by 'ibgw-ops lab up'; regenerated."):
        log(f"inventory written: {inventory_dir}")
    inventory.seed_group_vars(inventory_dir, data_dir() / "inventory" / "lab")
    return LabStatus("running", address, _image_tag(container), inventory_dir)


def down(log: images.Log) -> None:
    """Remove every container, network, volume and file the lab made; the cached images stay."""
    import docker.errors  # noqa: PLC0415

    client = connect()
    selector: dict[str, str | list[str] | bool] = {"label": f"{LABEL}={lab_name()}"}
    for container in client.containers.list(all=True, filters=selector):
        log(f"removing container {container.name}")
        container.remove(force=True, v=True)
    for network in client.networks.list(filters=selector):
        log(f"removing network {network.name}")
        try:
            network.remove()
        except docker.errors.APIError as exc:
            raise OpsError(f"network {network.name} is still in use: {exc.explanation}") from exc
    for volume in client.volumes.list(filters=selector):
        log(f"removing volume {volume.name}")
        volume.remove(force=True)
    files = LabFiles.default()
    if files.root.exists():
        log(f"removing {files.root}")
        shutil.rmtree(files.root)


def status() -> LabStatus:
    """Report the lab VM's state, address and inventory without changing anything."""
    client = connect()
    container = _find(client)
    inventory_dir = inventory.lab_inventory_dir()
    known = inventory_dir if inventory_dir.exists() else None
    if container is None:
        return LabStatus("absent", None, None, known)
    return LabStatus(container.status, _address(container) or None, _image_tag(container), known)


def ssh_argv(command: list[str]) -> list[str]:
    """The ssh command line that logs in to the lab VM as root (optionally running ``command``)."""
    files = LabFiles.default()
    current = status()
    if current.state != "running" or not current.address:
        raise OpsError(f"the lab VM is {current.state}; run 'ibgw-ops lab up'", ExitCode.UNREACHABLE)
    return _ssh_command(files, current.address, command, interactive=not command)


def _ssh_command(files: LabFiles, address: str, command: list[str], *, interactive: bool = False) -> list[str]:
    return ["ssh", *ssh_options(files, interactive=interactive), "-i", str(files.client_key), f"root@{address}",
            *command]


def _find(client: docker.DockerClient) -> Container | None:
    import docker.errors  # noqa: PLC0415

    try:
        container = client.containers.get(lab_name())
    except docker.errors.NotFound:
        return None
    if container.labels.get(LABEL) != lab_name():
        raise OpsError(f"a container named {lab_name()} exists that the lab did not create; remove it or set "
                       f"IBGW_OPS_LAB_NAME to another name", ExitCode.BAD_INPUT)
    return container


def _ensure_keys(files: LabFiles) -> None:
    files.root.mkdir(parents=True, exist_ok=True)
    files.root.chmod(0o700)
    for key, comment in ((files.client_key, "ibgw-ops lab root"), (files.host_key, "ibgw-lab host")):
        if not key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)],
                           check=True)
        key.chmod(0o600)


def _ensure_credentials(files: LabFiles) -> None:
    """Random rehearsal passwords for the example instances, in the shape the ib_gateway role reads."""
    if files.credentials.exists():
        return
    entries = {name: {"user_id": f"lab{name}", "password": secrets.token_urlsafe(18)} for name in ("live", "paper")}
    fd = os.open(files.credentials, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("# Rehearsal credentials for the lab's stand-in gateway, written by 'ibgw-ops lab up'.\n")
        yaml.safe_dump({"ib_gateway_credentials": entries}, handle, sort_keys=False)


def _ensure_container(client: docker.DockerClient, files: LabFiles, log: images.Log) -> Container:
    name = lab_name()
    container = _find(client)
    if container is None:
        _ensure_network(client, name)
        log(f"creating the lab VM {name}")
        container = client.containers.create(
            images.VM.reference,
            name=name,
            hostname=name,
            network=name,
            labels={LABEL: name},
            cap_add=["ALL"],
            cap_drop=["SYS_RESOURCE"],
            security_opt=["seccomp=unconfined", "apparmor=unconfined"],
            cgroupns="host",
            volumes={
                "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
                _ensure_disk(client, f"{name}-docker"): {"bind": "/var/lib/docker", "mode": "rw"},
            },
            tmpfs={"/run": "", "/run/lock": ""},
            stop_signal="SIGRTMIN+3",
            detach=True,
        )
        container.put_archive("/", _identity_archive(files))
    elif not _identity_matches(container, files):
        log("giving the lab VM this state directory's keys")
        container.put_archive("/", _identity_archive(files))
        if container.status == "running":
            container.exec_run(["systemctl", "restart", "ssh"])
    if container.status != "running":
        log(f"booting the lab VM {name}")
        container.start()
    container.reload()
    return container


def _identity_matches(container: Container, files: LabFiles) -> bool:
    """Whether the VM holds this state directory's host key and login key (the state may have moved)."""
    import docker.errors  # noqa: PLC0415

    for path, expected in (("/etc/ssh/ssh_host_ed25519_key.pub", files.host_key.with_suffix(".pub")),
                           ("/root/.ssh/authorized_keys", files.client_key.with_suffix(".pub"))):
        try:
            chunks, _ = container.get_archive(path)
        except docker.errors.NotFound:
            return False
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
            member = archive.extractfile(archive.getmembers()[0])
            if member is None or member.read() != expected.read_bytes():
                return False
    return True


def _ensure_network(client: docker.DockerClient, name: str) -> None:
    if all(network.name != name for network in client.networks.list(names=[name])):
        client.networks.create(name, driver="bridge", labels={LABEL: name})


def _ensure_disk(client: docker.DockerClient, volume: str) -> str:
    """A volume for the VM's /var/lib/docker, so the nested engine gets overlay2 instead of vfs."""
    if all(existing.name != volume for existing in client.volumes.list(filters={"name": volume})):
        client.volumes.create(volume, labels={LABEL: lab_name()})
    return volume


def _identity_archive(files: LabFiles) -> bytes:
    """Tar of the VM's host key pair and root's authorized_keys, with owners and modes set."""
    buffer = io.BytesIO()
    entries = [
        ("etc/ssh/ssh_host_ed25519_key", files.host_key.read_bytes(), 0o600),
        ("etc/ssh/ssh_host_ed25519_key.pub", files.host_key.with_suffix(".pub").read_bytes(), 0o644),
        ("root/.ssh/authorized_keys", files.client_key.with_suffix(".pub").read_bytes(), 0o600),
    ]
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        folder = tarfile.TarInfo("root/.ssh")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o700
        archive.addfile(folder)
        for name, data, mode in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _image_tag(container: Container) -> str | None:
    tags = container.image.tags if container.image else []
    return tags[0] if tags else None


def _address(container: Container) -> str:
    networks = container.attrs.get("NetworkSettings", {}).get("Networks", {})
    return str(networks.get(lab_name(), {}).get("IPAddress") or "")


def controller_address(client: docker.DockerClient, name: str) -> str:
    """The controller's address on lab ``name``'s network (its bridge gateway): the source of the VM's API clients."""
    network = client.networks.get(name)
    gateways = [config.get("Gateway") for config in network.attrs.get("IPAM", {}).get("Config") or []]
    ipv4 = [gateway for gateway in gateways if gateway and ":" not in gateway]
    if not ipv4:
        raise OpsError(f"the lab network {network.name} has no IPv4 gateway, the controller's address on it; "
                       "run 'ibgw-ops lab down' and 'ibgw-ops lab up'", ExitCode.UNREACHABLE)
    return str(ipv4[0])


def _write_known_hosts(files: LabFiles, address: str) -> None:
    if not address:
        raise OpsError("the lab VM has no address on its network", ExitCode.UNREACHABLE)
    key_type, key = files.host_key.with_suffix(".pub").read_text().split()[:2]
    entry = f"{address} {key_type} {key}\n"
    if not files.known_hosts.exists() or files.known_hosts.read_text() != entry:
        files.known_hosts.write_text(entry)


def _wait_for_ssh(files: LabFiles, address: str) -> None:
    """Poll until root can log in; sshd comes up within a second or two of boot."""
    deadline = time.monotonic() + SSH_WAIT_SECONDS
    argv = _ssh_command(files, address, ["true"])
    while True:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise OpsError(f"the lab VM {address} did not accept SSH within {SSH_WAIT_SECONDS:.0f} s: "
                           f"{result.stderr.strip()}", ExitCode.UNREACHABLE)
        time.sleep(0.2)

