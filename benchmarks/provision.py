"""provision on a fresh project of the fake Compute API, which takes a fixed time per mutating call: wall time
against the dependency graph's critical path, next to the same apply converging one resource at a time.

    .venv/bin/python -m benchmarks.provision [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from benchmarks.timing import Result, Sample, table, timed
from ibgw_ops.gcp import desired, provision
from ibgw_ops.gcp.compute import ComputeApi
from ibgw_ops.gcp.settings import load
from ibgw_ops.lab.fake_compute import FakeCompute
from ibgw_ops.paths import data_dir

CALL_DELAY = 1.0
EXAMPLE = data_dir() / "inventory" / "gcp"


def critical_path(resources: list[desired.Resource]) -> int:
    """Resources on the longest chain of needs: on a fresh project each costs one mutating call."""
    depth: dict[str, int] = {}
    for resource in resources:
        depth[resource.name] = 1 + max((depth[need] for need in resource.needs), default=0)
    return max(depth.values())


@contextmanager
def fake_projects() -> Iterator[tuple[Path, list[FakeCompute]]]:
    """An inventory copied from the example and a slot for the current fake project (replaced per run)."""
    workdir = Path(tempfile.mkdtemp(prefix="ibgw-bench-gcp-"))
    shutil.copytree(EXAMPLE, workdir / "inventory")
    saved = dict(os.environ)
    os.environ.update(IBGW_OPS_STATE_DIR=str(workdir / "state"), GOOGLE_API_USE_CLIENT_CERTIFICATE="false")
    current: list[FakeCompute] = []
    try:
        yield workdir / "inventory", current
    finally:
        for fake in current:
            fake.stop()
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(workdir)


def provision_vs_critical_path(runs: int) -> list[Result]:
    """The apply itself (in-process), the whole command (interpreter and client library included), a refusal."""
    with fake_projects() as (inventory, current):
        def new_project() -> None:
            for old in current:
                old.stop()
            current[:] = [FakeCompute(delay=CALL_DELAY).start()]
            os.environ["IBGW_OPS_COMPUTE_ENDPOINT"] = current[0].url

        def apply(max_workers: int) -> None:
            settings = load(inventory)
            provision.apply(ComputeApi(settings), settings, lambda step: None, max_workers=max_workers)

        def cli() -> None:
            subprocess.run([str(Path(sys.executable).parent / "ibgw-ops"), "-i", str(inventory), "provision",
                            "--skip-deploy"], check=True, capture_output=True)

        concurrent = timed(lambda: apply(8), runs, before=new_project)
        sequential = timed(lambda: apply(1), runs, before=new_project)
        command = timed(cli, runs, before=new_project)
        refused, interpreter = bad_settings_refused(inventory, runs)
    path = critical_path(desired.resources(load(EXAMPLE))) * CALL_DELAY
    over = command.median - path
    return [
        Result(f"provision apply, fresh project, {CALL_DELAY:g} s per mutating call", concurrent, sequential,
               "the same apply, one resource at a time", f"{concurrent.median / path:.2f} x critical path "
               f"({path:g} s)", "<= 1.3 x", concurrent.median <= 1.3 * path),
        Result("ibgw-ops provision --skip-deploy (whole command)", command, concurrent, "provision apply",
               f"critical path ({path:g} s) + {over:.2f} s", "<= + 1.0 s", over <= 1.0),
        Result("ibgw-ops provision, a bad zone (exit 2)", refused, interpreter, "python3 -c pass",
               f"+{refused.median - interpreter.median:.2f} s", "<= +0.30 s",
               refused.median - interpreter.median <= 0.3),
    ]


def bad_settings_refused(inventory: Path, runs: int) -> tuple[Sample, Sample]:
    """provision with a zone outside its region (refused before any Google import), and a bare interpreter."""
    bad = inventory.parent / "bad-inventory"
    shutil.copytree(inventory, bad)
    settings = yaml.safe_load((bad / "gcp.yml").read_text())
    (bad / "gcp.yml").write_text(yaml.safe_dump({**settings, "zone": "moon-1"}))

    def refused() -> None:
        result = subprocess.run([str(Path(sys.executable).parent / "ibgw-ops"), "-i", str(bad), "provision"],
                                capture_output=True, check=False)
        assert result.returncode == 2, result.stderr

    return timed(refused, runs), timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    print(table(provision_vs_critical_path(parser.parse_args().runs)))


if __name__ == "__main__":
    main()
