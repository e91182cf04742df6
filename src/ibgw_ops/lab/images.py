"""Lab images built from Debian's packages (no registry needed), cached by a hash of their recipe.

- ``vm``: a Debian 13 root filesystem with systemd, sshd and python3: what a fresh GCE instance offers Ansible. Its
  apt cache holds docker_engine's Debian packages, downloaded but not installed, as a nearby mirror would serve them:
  every lab VM's first converge installs them for real, without fetching 170 MB again (ten lab VMs in one CI run).
- ``base``: a minimal Debian 13 with python3, socat and envsubst, the parent of the gateway stand-in.
A second ``lab up`` finds both by their recipe label and builds nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from ibgw_ops.errors import OpsError
from ibgw_ops.lab.engine import IMAGE_LABEL
from ibgw_ops.paths import role_defaults

if TYPE_CHECKING:
    import docker

RECIPE_LABEL = "io.ibgw-ops.recipe"
SUITE = "trixie"
Log = Callable[[str], None]

# A lab quirk, not a product setting: nested dockerd on these hosts cannot publish ports without it.
_DOCKER_DROPIN = "[Service]\nEnvironment=DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1\n"


@dataclass(frozen=True)
class RootfsRecipe:
    """A debootstrap root filesystem imported as an image."""

    repository: str
    packages: tuple[str, ...]
    command: str
    vm: bool
    trim: tuple[str, ...] = ()
    # Packages apt downloads into the image's cache (with its package lists), not installed.
    downloaded: tuple[str, ...] = ()

    @property
    def digest(self) -> str:
        """Short hash of everything that shapes the image."""
        text = "|".join([SUITE, *self.packages, self.command, str(self.vm), _DOCKER_DROPIN, *self.trim,
                         *self.downloaded])
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def tag(self) -> str:
        """Image tag: the suite and the recipe hash."""
        return f"{SUITE}-{self.digest}"

    @property
    def reference(self) -> str:
        """Full image reference."""
        return f"{self.repository}:{self.tag}"


VM = RootfsRecipe(
    repository="ibgw-lab/debian-vm",
    packages=("systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "sudo", "iproute2",
              "ca-certificates"),
    command='CMD ["/lib/systemd/systemd"]',
    vm=True,
    downloaded=tuple(role_defaults("docker_engine")["docker_engine_debian_packages"]),
)
BASE = RootfsRecipe(
    repository="ibgw-lab/debian-base",
    # The stand-in runs the image's tools for real: socat, envsubst (gettext-base), pkill (procps).
    packages=("python3", "socat", "gettext-base", "procps"),
    command='CMD ["/bin/bash"]',
    vm=False,
    # What nothing in the stand-in reads: apt's package lists and caches, documentation and translations, more
    # than half of the image. Each lab VM gets the stand-in as an archive to copy and load: smaller is faster.
    trim=("var/lib/apt/lists", "var/cache/apt", "usr/share/doc", "usr/share/man", "usr/share/info",
          "usr/share/locale"),
)


def ensure_rootfs_images(client: docker.DockerClient, log: Log) -> None:
    """Build whichever of the lab's root filesystem images is missing; a warm cache returns at once."""
    missing = [r for r in (VM, BASE) if not _exists(client, r.reference)]
    if not missing:
        return
    if shutil.which("debootstrap") is None:
        raise OpsError("debootstrap is not installed; scripts/setup installs it")
    with tempfile.TemporaryDirectory(prefix="ibgw-lab-build-") as tmp:
        cache = Path(tmp) / "debs"
        cache.mkdir()
        for recipe in missing:
            log(f"building {recipe.reference} with debootstrap (once; about a minute)")
            rootfs = Path(tmp) / recipe.repository.rsplit("/", 1)[-1]
            _debootstrap(recipe, rootfs, cache)
            if recipe.vm:
                _make_vm_like(rootfs)
            if recipe.downloaded:
                _download(recipe.downloaded, rootfs)
            for folder in recipe.trim:
                _empty(rootfs / folder)
            archive = Path(tmp) / "rootfs.tar"
            subprocess.run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(archive), "."], check=True)
            shutil.rmtree(rootfs)
            client.api.import_image(
                src=str(archive),
                repository=recipe.repository,
                tag=recipe.tag,
                changes=[recipe.command, f"LABEL {RECIPE_LABEL}={recipe.digest} {IMAGE_LABEL}=true"],
            )
            archive.unlink()
            _prune(client, recipe.repository, recipe.reference)


STANDIN_REPOSITORY = "ibgw-lab/ib-gateway"


def standin_reference() -> str:
    """Stand-in image reference, tagged with a hash of its sources and base so any change rebuilds it."""
    digest = hashlib.sha256(BASE.reference.encode())
    for source in sorted(_standin_context().iterdir()):
        if source.is_file() and source.suffix != ".pyc":
            digest.update(source.name.encode() + source.read_bytes())
    return f"{STANDIN_REPOSITORY}:standin-{digest.hexdigest()[:12]}"


def ensure_standin(client: docker.DockerClient, archive_dir: Path, log: Log) -> tuple[str, Path]:
    """Build the gateway stand-in image if missing and keep a ``docker save`` archive of it for the VM."""
    reference = standin_reference()
    if not _exists(client, reference):
        log(f"building the gateway stand-in {reference}")
        client.images.build(
            path=str(_standin_context()),
            tag=reference,
            buildargs={"BASE": BASE.reference},
            labels={IMAGE_LABEL: "true"},
            rm=True,
            network_mode="none",
        )
        _prune(client, STANDIN_REPOSITORY, reference)
    archive = archive_dir / (reference.replace("/", "_").replace(":", "_") + ".tar")
    if not archive.exists():
        archive_dir.mkdir(parents=True, exist_ok=True)
        for stale in archive_dir.glob("*.tar"):
            stale.unlink()
        partial = archive.with_suffix(".partial")
        with partial.open("wb") as out:
            for chunk in client.images.get(reference).save(named=True):
                out.write(chunk)
        partial.replace(archive)
    return reference, archive


def ensure_standin_variant(client: docker.DockerClient, tag: str) -> str:
    """A second stand-in tag with an image id of its own, for rehearsing upgrades and rollbacks by digest.

    The stand-in plus one label: the same files and command, so it behaves exactly like the stand-in, but a tag
    of it is a different image (a ``docker tag`` would share the id and could not tell a rollback from a no-op).
    """
    reference = f"{STANDIN_REPOSITORY}:{tag}"
    dockerfile = f"FROM {standin_reference()}\nLABEL io.ibgw-ops.standin-variant={tag}\n"
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=reference, labels={IMAGE_LABEL: "true"},
                        rm=True, network_mode="none")
    return reference


def _prune(client: docker.DockerClient, repository: str, keep: str) -> None:
    """Remove the lab's older builds of ``repository`` that no container uses."""
    import docker.errors  # noqa: PLC0415

    for image in client.images.list(name=repository, filters={"label": IMAGE_LABEL}):
        for tag in image.tags:
            if tag != keep:
                # An image still used by a container (a running lab VM) stays until 'lab down'.
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(tag)


def _exists(client: docker.DockerClient, reference: str) -> bool:
    import docker.errors  # noqa: PLC0415

    try:
        client.images.get(reference)
    except docker.errors.ImageNotFound:
        return False
    return True


def _standin_context() -> Path:
    return Path(str(resources.files("ibgw_ops.lab.standin")))


def _debootstrap(recipe: RootfsRecipe, rootfs: Path, cache: Path) -> None:
    # No mirror argument: debootstrap's default, or the machine's own configuration, decides.
    _build_step(["debootstrap", "--variant=minbase", f"--include={','.join(recipe.packages)}",
                 f"--cache-dir={cache}", SUITE, str(rootfs)], f"debootstrap {SUITE}")


def _build_step(command: list[str], what: str, env: dict[str, str] | None = None) -> None:
    """Run one step of an image build; a failure is an OpsError with the step's last 15 lines of output."""
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise OpsError(f"{what} failed (exit {result.returncode}):\n{tail}")


def _empty(folder: Path) -> None:
    """Remove what the folder holds; the folder stays, as a package manager would leave it."""
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _download(packages: tuple[str, ...], rootfs: Path) -> None:
    """Fill the root filesystem's apt cache with ``packages`` and what they need, through its own apt (chroot)."""
    resolv = rootfs / "etc" / "resolv.conf"
    kept = resolv.with_name("resolv.conf.ibgw-lab")
    if resolv.is_symlink() or resolv.exists():
        resolv.rename(kept)
    shutil.copyfile("/etc/resolv.conf", resolv)
    try:
        for command in (["apt-get", "update"], ["apt-get", "install", "--download-only", "--yes", *packages]):
            _build_step(["chroot", str(rootfs), *command], f"{' '.join(command)} in the lab VM image",
                        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive"})
    finally:
        resolv.unlink()
        if kept.is_symlink() or kept.exists():
            kept.rename(resolv)


def _make_vm_like(rootfs: Path) -> None:
    """Make the root filesystem boot like a fresh cloud instance: unique identity, no baked host keys."""
    for key in (rootfs / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()
    (rootfs / "etc" / "machine-id").write_text("")
    dropin = rootfs / "etc" / "systemd" / "system" / "docker.service.d" / "ibgw-lab.conf"
    dropin.parent.mkdir(parents=True, exist_ok=True)
    dropin.write_text(_DOCKER_DROPIN)
    # A container cannot load kernel modules; masking the unit keeps the boot state "running", as on a VM.
    (rootfs / "etc" / "systemd" / "system" / "systemd-modules-load.service").symlink_to("/dev/null")
