"""Benchmarks on a lab VM of their own: each a difference or ratio against a baseline measured in the same run.

    .venv/bin/python -m benchmarks.run [--runs 5]

Prints one table (median, min and max of each side). Timings never decide a test: these machines are noisy, so
only same-run comparisons are reported.
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from benchmarks.provision import provision_vs_critical_path
from benchmarks.timing import Result, Sample, table, timed
from ibgw_ops.on_host import tws_probe

ROOT = Path(__file__).resolve().parents[1]
LAB = "ibgw-bench"
STATE = ROOT / ".state" / "bench"
BIN = Path(sys.executable).parent
ENV = {**os.environ, "IBGW_OPS_LAB_NAME": LAB, "IBGW_OPS_STATE_DIR": str(STATE)}
INVENTORY = STATE / "lab" / "inventory"
LOGIN_DELAY = 20.0


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, env=env or ENV, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def ibgw(*args: str) -> subprocess.CompletedProcess[str]:
    return run(str(BIN / "ibgw-ops"), *args)


def playbook(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run(str(BIN / "ansible-playbook"), "-i", str(INVENTORY), str(ROOT / "playbooks" / name), *args,
               env={**ENV, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")})


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


def cli_startup(runs: int) -> list[Result]:
    baseline = timed(lambda: run(sys.executable, "-c", "pass"), runs)
    rows = []
    for args in (["--help"], ["status", "--help"]):
        subject = timed(functools.partial(ibgw, *args), runs)
        over = subject.median - baseline.median
        rows.append(Result(f"CLI start-up: ibgw-ops {' '.join(args)}", subject, baseline, "python3 -c pass",
                           f"+{over:.2f} s", "<= +0.30 s", over <= 0.3))
    return rows


def paper_up_overhead(runs: int) -> Result:
    hosts = yaml.safe_load((INVENTORY / "hosts.yml").read_text())["all"]["children"]["ibgw_gateways"]["hosts"]
    host = hosts[LAB]
    probe_script = STATE / "baseline_probe.py"
    probe_script.write_text(Path(tws_probe.__file__).read_text() + (
        f"\nimport sys\nready = wait_until_ready('{host['ibgw_internal_ip']}', 4002, timeout=120).ready\n"
        "sys.exit(0 if ready else 4)\n"))
    known_hosts = host["ansible_ssh_common_args"].split("UserKnownHostsFile=")[1].split()[0]
    baseline_cmd = [str(ROOT / "benchmarks" / "baseline_paper_up.sh"), host["ansible_ssh_private_key_file"],
                    known_hosts, host["ansible_host"], str(probe_script)]
    baseline = timed(lambda: run(*baseline_cmd), runs, before=paper_down)
    subject = timed(lambda: ibgw("paper-up"), runs, before=paper_down)
    over = subject.median - baseline.median
    return Result("paper-up (login delay 0 s)", subject, baseline, "ssh + compose up + handshake poll",
                  f"+{over:.2f} s", "<= +1.00 s", over <= 1.0)


def readiness_detection(runs: int, zero: Sample) -> Result:
    set_login_delay(LOGIN_DELAY)
    try:
        subject = timed(lambda: ibgw("paper-up"), runs, before=paper_down)
    finally:
        paper_down()
        set_login_delay(0)
    detected = subject.median - zero.median
    return Result(f"paper-up, login delay {LOGIN_DELAY:g} s minus 0 s", subject, zero, "paper-up, delay 0 s",
                  f"{detected:.2f} s", f"{LOGIN_DELAY:g} s +/- 0.50", abs(detected - LOGIN_DELAY) <= 0.5)


def ping_play(runs: int) -> Sample:
    """The deploy rows' baseline: a one-task play over the same SSH."""
    return timed(lambda: playbook(str(ROOT / "benchmarks" / "ping.yml")), runs)


def deploy_changed(stderr: str) -> int:
    """The recap's changed count of a verbose deploy."""
    return int(stderr.rsplit("changed=", 1)[1].split(maxsplit=1)[0])


def noop_deploy(runs: int, ping: Sample) -> Result:
    changed: list[int] = []
    subject = timed(lambda: changed.append(deploy_changed(ibgw("deploy", "-v").stderr)), runs)
    ratio = subject.median / ping.median
    return Result(f"no-op deploy (changed={max(changed)})", subject, ping, "one-task ping play",
                  f"{ratio:.2f} x", "<= 3 x, changed=0", ratio <= 3 and max(changed) == 0)


def one_setting_deploy(runs: int, ping: Sample) -> Result:
    """A deploy after one instance's setting changed: paper's time zone, another one each run."""
    zones = iter(["Europe/Zurich", "America/Chicago"] * runs)
    changed: list[int] = []

    def change() -> None:
        write_host_vars(ib_gateway_extra_env={"STANDIN_LOGIN_DELAY": "0"}, ib_gateway_instances=[
            {"name": "live", "mode": "live"}, {"name": "paper", "mode": "paper", "time_zone": next(zones)}])

    try:
        subject = timed(lambda: changed.append(deploy_changed(ibgw("deploy", "-v").stderr)), runs, before=change)
    finally:
        set_login_delay(0)
    ratio = subject.median / ping.median
    return Result(f"deploy changing one instance's setting (changed={min(changed)}-{max(changed)})", subject, ping,
                  "one-task ping play", f"{ratio:.2f} x", "<= 4 x", ratio <= 4 and min(changed) > 0)


def many_hosts_deploy(runs: int, hosts: int = 10) -> Result:
    """A no-op deploy on ten inventory hosts against one: aliases of the lab VM, each with its own gateway root.

    They share the VM, its Docker and its firewall (the same ports everywhere), so the ten do ten hosts' work on
    one machine: an upper bound on what ten real VMs cost the controller.
    """
    lab_hosts = yaml.safe_load((INVENTORY / "hosts.yml").read_text())["all"]["children"]["ibgw_gateways"]["hosts"]
    lab_vars = lab_hosts[LAB]

    def inventory(count: int) -> Path:
        directory = STATE / f"inventory-{count}"
        (directory / "group_vars").mkdir(parents=True, exist_ok=True)
        aliases = {f"{LAB}-{n}": {**lab_vars, "ib_gateway_root": f"/opt/ibgw-bench-{n}"} for n in range(count)}
        (directory / "hosts.yml").write_text(yaml.safe_dump(
            {"all": {"children": {"ibgw_gateways": {"hosts": aliases}}}}))
        for group_file in (INVENTORY / "group_vars").iterdir():
            (directory / "group_vars" / group_file.name).write_text(group_file.read_text())
        ibgw("-i", str(directory), "deploy")
        return directory

    one, many = inventory(1), inventory(hosts)
    baseline = timed(lambda: ibgw("-i", str(one), "deploy"), runs)
    subject = timed(lambda: ibgw("-i", str(many), "deploy"), runs)
    ratio = subject.median / baseline.median
    return Result(f"no-op deploy on {hosts} inventory hosts (one VM)", subject, baseline, "the same on 1 host",
                  f"{ratio:.2f} x", "<= 1.5 x", ratio <= 1.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    started = time.monotonic()
    ibgw("lab", "up")
    playbook("site.yml")
    set_login_delay(0)
    results = cli_startup(runs)
    ping = ping_play(runs)
    deploys = [noop_deploy(runs, ping), one_setting_deploy(runs, ping), many_hosts_deploy(runs)]
    up = paper_up_overhead(runs)
    results += [up, readiness_detection(runs, up.subject), *deploys, *provision_vs_critical_path(runs)]
    paper_down()
    print(table(results))
    print(f"\n{runs} runs each; {time.monotonic() - started:.0f} s in all; lab VM {LAB} (remove: "
          f"IBGW_OPS_LAB_NAME={LAB} IBGW_OPS_STATE_DIR={STATE} ibgw-ops lab down)")


if __name__ == "__main__":
    main()
