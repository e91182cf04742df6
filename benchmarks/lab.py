"""The benchmarks' lab VM and how they run ibgw-ops, Ansible and measure a command's CPU against it."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
# A lab of its own; IBGW_BENCH_LAB names another one (two benchmark runs on one machine).
LAB = os.environ.get("IBGW_BENCH_LAB", "ibgw-bench")
STATE = ROOT / ".state" / ("bench" if LAB == "ibgw-bench" else LAB)
BIN = Path(sys.executable).parent
ENV = {**os.environ, "IBGW_OPS_LAB_NAME": LAB, "IBGW_OPS_STATE_DIR": str(STATE)}
INVENTORY = STATE / "lab" / "inventory"
# What ibgw-ops gives ansible-playbook (ansible_run.PlaybookRunner), for the bare ansible-playbook baselines.
PLAYBOOK_ENV = {**ENV, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_HOST_KEY_CHECKING": "True",
                "ANSIBLE_NOCOLOR": "True", "PYTHONWARNINGS": "ignore"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, env=env or ENV, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def ibgw(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run(str(BIN / "ibgw-ops"), *args, env=env)


def playbook(name: str, *args: str, inventory: Path = INVENTORY) -> subprocess.CompletedProcess[str]:
    return run(str(BIN / "ansible-playbook"), "-i", str(inventory), str(ROOT / "playbooks" / name), *args,
               env=PLAYBOOK_ENV)


def lab_host() -> dict[str, Any]:
    """The lab host's inventory variables (address, key, ssh options)."""
    hosts = yaml.safe_load((INVENTORY / "hosts.yml").read_text())["all"]["children"]["ibgw_gateways"]["hosts"]
    return dict(hosts[LAB])


def write_host_vars(**variables: object) -> None:
    """The lab host's own inventory variables (replacing the previous ones)."""
    host_vars = INVENTORY / "host_vars" / f"{LAB}.yml"
    host_vars.parent.mkdir(exist_ok=True)
    host_vars.write_text(yaml.safe_dump(variables))


def set_login_delay(seconds: float) -> None:
    """The stand-in's login delay, as inventory (so a later plain deploy keeps it), then deployed."""
    write_host_vars(ib_gateway_extra_env={"STANDIN_LOGIN_DELAY": f"{seconds:g}"})
    playbook("site.yml", "--tags", "ib_gateway")


def paper_down() -> None:
    ibgw("paper-down")


def alias_inventory(count: int) -> Path:
    """An inventory of ``count`` aliases of the lab VM, each with its own gateway root, deployed once.

    They share the VM, its Docker and its firewall (the same ports everywhere): ``count`` hosts' work on one
    machine, an upper bound on what as many real VMs cost the controller.
    """
    directory = STATE / f"inventory-{count}"
    (directory / "group_vars").mkdir(parents=True, exist_ok=True)
    aliases = {f"{LAB}-{n}": {**lab_host(), "ib_gateway_root": f"/opt/ibgw-bench-{n}"} for n in range(count)}
    (directory / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"ibgw_gateways": {"hosts": aliases}}}}))
    for group_file in (INVENTORY / "group_vars").iterdir():
        (directory / "group_vars" / group_file.name).write_text(group_file.read_text())
    ibgw("-i", str(directory), "deploy")
    return directory


def control_path_name() -> str:
    """The file name of the lab host's SSH master socket, as Ansible's ssh connection names it (host-port-user)."""
    host = lab_host()
    key = f"{host['ansible_host']}-{host.get('ansible_port')}-{host['ansible_user']}"
    return hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:10]


def ssh_masters() -> dict[int, float]:
    """CPU seconds (user+system) so far of each SSH master process serving the lab host, by process id.

    A master runs detached from the ansible-playbook that started it, so no wait4 of that tree counts it.
    """
    name, masters = control_path_name(), {}
    for stat in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = stat.read_bytes().decode(errors="replace")
            if argv.startswith("ssh: ") and f"/{name} [mux]" in argv:
                fields = (stat.parent / "stat").read_text().rsplit(")", 1)[1].split()
                masters[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        except OSError:
            continue
    return masters


def stop_ssh_masters() -> None:
    """End the lab host's SSH masters, so the next command connects afresh."""
    for pid in ssh_masters():
        os.kill(pid, 15)
    while ssh_masters():
        time.sleep(0.05)


def cpu_seconds(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run ``argv``; return its wall time and the controller CPU it took (its process tree and the SSH masters)."""
    masters = ssh_masters()
    start = time.perf_counter()
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(argv, env=env or ENV, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            stderr.seek(0)
            raise SystemExit(f"{' '.join(argv)} exited {process.returncode}:\n{stderr.read().decode()}")
    ssh = sum(cpu - masters.get(pid, 0.0) for pid, cpu in ssh_masters().items())
    return wall, usage.ru_utime + usage.ru_stime + ssh

