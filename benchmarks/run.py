"""Benchmarks on a lab VM of their own: each a difference or ratio against a baseline measured in the same run.

    .venv/bin/python -m benchmarks.run [--runs 5] [--rows GROUP,...]

Prints one table (median, min and max of each side). Timings never decide a test: these machines are noisy, so
only same-run comparisons are reported, and the sides of a comparison run in turn where they can.
IBGW_BENCH_LAB names the lab VM (default ibgw-bench).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable

from benchmarks import controller
from benchmarks.lab import LAB, STATE, ibgw, paper_down, playbook, run, set_login_delay, write_host_vars
from benchmarks.provision import provision_vs_critical_path
from benchmarks.timing import Result, Sample, table, timed

LOGIN_DELAY = 20.0


def cli_startup(runs: int) -> list[Result]:
    baseline = timed(lambda: run(sys.executable, "-c", "pass"), runs)
    rows = []
    for args in (["--help"], ["status", "--help"]):
        subject = timed(functools.partial(ibgw, *args), runs)
        over = subject.median - baseline.median
        rows.append(Result(f"CLI start-up: ibgw-ops {' '.join(args)}", subject, baseline, "python3 -c pass",
                           f"+{over:.2f} s", "<= +0.30 s", over <= 0.3))
    return rows


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
    return timed(lambda: playbook(str(controller.PING)), runs)


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


def groups(runs: int) -> dict[str, Callable[[], list[Result]]]:
    """The benchmarks by group name, in the order of a full run; each group measures its own baselines."""
    def paper() -> list[Result]:
        rows = controller.paper_up_shares(runs)
        return [*rows, readiness_detection(runs, rows[0].subject)]

    def deploys() -> list[Result]:
        ping = ping_play(runs)
        return [noop_deploy(runs, ping), one_setting_deploy(runs, ping)]

    return {
        "startup": lambda: cli_startup(runs),
        "paper": paper,
        "runner": lambda: [controller.runner_share(runs)],
        "ssh": lambda: [controller.ssh_master_reuse(runs)],
        "deploy": deploys,
        "mitogen": lambda: controller.noop_deploy_mitogen(runs),
        "hosts": lambda: controller.hosts_and_forks(runs),
        "provision": lambda: provision_vs_critical_path(runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rows", default="", metavar="GROUP,...",
                        help="only these groups: " + ", ".join(groups(0)) + " (default: all)")
    args = parser.parse_args()
    available = groups(args.runs)
    chosen = [name for name in args.rows.split(",") if name] or list(available)
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        parser.error(f"--rows: unknown group(s) {', '.join(unknown)}; allowed: {', '.join(available)}")
    started = time.monotonic()
    uses_lab = bool(set(chosen) - {"startup", "provision"})
    if uses_lab:
        ibgw("lab", "up")
        playbook("site.yml")
        set_login_delay(0)
    results = [row for name in chosen for row in available[name]()]
    if uses_lab:
        paper_down()
    print(table(results))
    print(f"\n{args.runs} runs each; {time.monotonic() - started:.0f} s in all", file=sys.stderr)
    if uses_lab:
        print(f"lab VM {LAB} (remove: IBGW_OPS_LAB_NAME={LAB} IBGW_OPS_STATE_DIR={STATE} ibgw-ops lab down)",
              file=sys.stderr)


if __name__ == "__main__":
    main()
