"""The controller's share of a verb: what ibgw-ops and ansible-runner add to ansible-playbook, the SSH master kept
between verbs, Mitogen as an opt-in strategy, and the CPU and wall time of a no-op deploy per host and forks.
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks import lab
from benchmarks.timing import Result, Sample, alternated
from ibgw_ops.on_host import tws_probe

# One run of a shipped playbook through ibgw-ops' PlaybookRunner, without the CLI: ansible-runner's share alone.
THROUGH_RUNNER = """
import sys
from pathlib import Path
from ibgw_ops import ansible_run
from ibgw_ops.interrupts import Interrupts
ansible_run.playbook_path = lambda name: Path(sys.argv[1])
with Interrupts() as interrupts:
    ansible_run.PlaybookRunner(Path(sys.argv[2]), interrupts).run('ping.yml').raise_for_failure()
"""
PING = lab.ROOT / "benchmarks" / "ping.yml"


def mitogen_env() -> dict[str, str] | None:
    """ibgw-ops' environment with Mitogen's linear strategy, if the mitogen package is installed."""
    spec = importlib.util.find_spec("ansible_mitogen")
    if spec is None or spec.origin is None:
        return None
    strategies = Path(spec.origin).parent / "plugins" / "strategy"
    return {**lab.ENV, "ANSIBLE_STRATEGY_PLUGINS": str(strategies), "ANSIBLE_STRATEGY": "mitogen_linear"}


def paper_up_shares(runs: int) -> list[Result]:
    """paper-up against a bare ssh, a bare ansible-playbook of the same playbook, interpreter discovery and Mitogen.

    All alternated, each after a paper-down.
    """
    host = lab.lab_host()
    probe_script = lab.STATE / "baseline_probe.py"
    probe_script.write_text(Path(tws_probe.__file__).read_text() + (
        f"\nimport sys\nready = wait_until_ready('{host['ibgw_internal_ip']}', 4002, timeout=120).ready\n"
        "sys.exit(0 if ready else 4)\n"))
    known_hosts = host["ansible_ssh_common_args"].split("UserKnownHostsFile=")[1].split()[0]
    bare_ssh = [str(lab.ROOT / "benchmarks" / "baseline_paper_up.sh"), host["ansible_ssh_private_key_file"],
                known_hosts, host["ansible_host"], str(probe_script)]
    actions: dict[str, Callable[[], object]] = {
        "ssh": lambda: lab.run(*bare_ssh),
        "playbook": lambda: lab.playbook("start.yml", "-e", "ib_gateway_target=paper"),
        "paper-up": lambda: lab.ibgw("paper-up"),
        "discovery": lambda: lab.ibgw("paper-up", env={**lab.ENV, "ANSIBLE_PYTHON_INTERPRETER": "auto_silent"}),
    }
    mitogen = mitogen_env()
    if mitogen:
        actions["mitogen"] = lambda: lab.ibgw("paper-up", env=mitogen)
    samples = alternated(actions, runs, before=lab.paper_down)
    ssh, bare, up = samples["ssh"], samples["playbook"], samples["paper-up"]
    over, share = up.median - ssh.median, up.median - bare.median
    rows = [
        Result("paper-up (login delay 0 s)", up, ssh, "ssh + compose up + handshake poll", f"+{over:.2f} s",
               "<= +1.00 s", over <= 1.0),
        Result("ansible-playbook start.yml, no ibgw-ops (Ansible's share)", bare, ssh,
               "ssh + compose up + handshake poll", f"{bare.median - ssh.median:+.2f} s", "-", True),
        Result("paper-up over ansible-playbook start.yml (ibgw-ops' share)", up, bare,
               "ansible-playbook start.yml", f"{share:+.2f} s", "<= +0.30 s", share <= 0.3),
        Result("paper-up with ansible.cfg's interpreter_python", up, samples["discovery"],
               "paper-up discovering the interpreter", f"{up.median - samples['discovery'].median:+.2f} s", "< 0",
               up.median < samples["discovery"].median),
    ]
    if "mitogen" in samples:
        rows.append(mitogen_row("paper-up", samples["mitogen"], up))
    return rows


def mitogen_row(what: str, subject: Sample, baseline: Sample) -> Result:
    ratio = subject.median / baseline.median
    return Result(f"{what}, Mitogen strategy (opt-in)", subject, baseline, f"{what}, Ansible's linear strategy",
                  f"{ratio:.2f} x", "<= 0.80 x to be worth a dependency", ratio <= 0.8)


def runner_share(runs: int) -> Result:
    """The one-task ping play through PlaybookRunner (interpreter, imports, ansible-runner) and bare (alternated)."""
    samples = alternated({
        "bare": lambda: lab.playbook(str(PING)),
        "runner": lambda: lab.run(str(lab.BIN / "python"), "-c", THROUGH_RUNNER, str(PING), str(lab.INVENTORY)),
    }, runs)
    over = samples["runner"].median - samples["bare"].median
    return Result("ping play through ibgw-ops' PlaybookRunner (ansible-runner's share)", samples["runner"],
                  samples["bare"], "ansible-playbook ping.yml", f"+{over:.2f} s", "<= +0.30 s", over <= 0.3)


def ssh_master_reuse(runs: int) -> Result:
    """paper-down right after paper-up, on the SSH master paper-up left, against one that has to connect afresh."""
    reused: list[bool] = []

    def kept() -> None:
        before = set(lab.ssh_masters())
        lab.paper_down()
        reused.append(bool(before) and before == set(lab.ssh_masters()))

    def fresh() -> None:
        lab.stop_ssh_masters()
        lab.paper_down()

    samples = alternated({"kept": kept, "fresh": fresh}, runs, before=lambda: lab.ibgw("paper-up"))
    saved = samples["fresh"].median - samples["kept"].median
    return Result("paper-down on the SSH master paper-up left", samples["kept"], samples["fresh"],
                  "paper-down, SSH connecting afresh", f"-{saved:.2f} s, master reused {sum(reused)}/{len(reused)}",
                  "reused every time", all(reused))


def noop_deploy_mitogen(runs: int) -> list[Result]:
    mitogen = mitogen_env()
    if mitogen is None:
        print("mitogen is not installed: no Mitogen rows (pip install mitogen)", file=sys.stderr)
        return []
    samples = alternated({"linear": lambda: lab.ibgw("deploy"),
                          "mitogen": lambda: lab.ibgw("deploy", env=mitogen)}, runs)
    return [mitogen_row("no-op deploy", samples["mitogen"], samples["linear"])]


def hosts_and_forks(runs: int) -> list[Result]:
    """A no-op deploy of 1, 5 and 10 aliases of the lab VM (forks 5 and 10): wall time, and CPU per host.

    The CPU is the controller's, user plus system: ibgw-ops' process tree (os.wait4) and the SSH master. The ping
    play on the same hosts is the CPU baseline: Ansible's least per host.
    """
    inventories = {count: lab.alias_inventory(count) for count in (1, 5, 10)}
    cases = {f"{count} hosts, forks {forks}": (count, forks) for count, forks in ((1, 5), (5, 5), (10, 5), (10, 10))}
    wall: dict[str, list[float]] = {name: [] for name in [*cases, "ping 1", "ping 10"]}
    cpu: dict[str, list[float]] = {name: [] for name in wall}
    for _ in range(runs):
        for name, (count, forks) in cases.items():
            took, used = lab.cpu_seconds([str(lab.BIN / "ibgw-ops"), "-i", str(inventories[count]), "deploy"],
                                         env={**lab.ENV, "ANSIBLE_FORKS": str(forks)})
            wall[name].append(took)
            cpu[name].append(used / count)
        for count in (1, 10):
            took, used = lab.cpu_seconds([str(lab.BIN / "ansible-playbook"), "-i", str(inventories[count]),
                                          str(PING)], env=lab.PLAYBOOK_ENV)
            wall[f"ping {count}"].append(took)
            cpu[f"ping {count}"].append(used / count)
    walls = {name: Sample(values) for name, values in wall.items()}
    cpus = {name: Sample(values) for name, values in cpu.items()}
    one = walls["1 hosts, forks 5"]
    rows = []
    for count, name in ((1, "1 hosts, forks 5"), (10, "10 hosts, forks 5")):
        per_host = cpus[name].median
        rows.append(Result(f"controller CPU per host, no-op deploy of {count} host(s) (user+system)", cpus[name],
                           cpus[f"ping {count}"], f"ping play, CPU per host ({count})", f"{per_host:.2f} s per host",
                           "<= 3 s per host", per_host <= 3.0))
    for name in ("5 hosts, forks 5", "10 hosts, forks 5", "10 hosts, forks 10"):
        ratio = walls[name].median / one.median
        rows.append(Result(f"no-op deploy on {name.replace('hosts', 'inventory hosts (one VM)')}", walls[name], one,
                           "the same on 1 host", f"{ratio:.2f} x", "<= 1.5 x", ratio <= 1.5))
    print(f"CPU per host medians ({lab.LAB}): " + ", ".join(f"{name} {statistics.median(values):.2f} s"
                                                         for name, values in cpu.items()), file=sys.stderr)
    return rows
