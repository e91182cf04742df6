"""What every benchmark shares: timing a callable, its samples, and the table rows they become."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Sample:
    """Wall times of one side of a benchmark."""

    times: list[float]

    def cell(self) -> str:
        return f"{statistics.median(self.times):.2f} s ({min(self.times):.2f}-{max(self.times):.2f})"

    @property
    def median(self) -> float:
        return statistics.median(self.times)


@dataclass
class Result:
    """One table row."""

    name: str
    subject: Sample
    baseline: Sample
    baseline_name: str
    measure: str
    target: str
    met: bool


def timed(action: Callable[[], object], runs: int, before: Callable[[], object] | None = None) -> Sample:
    times = []
    for _ in range(runs):
        if before:
            before()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return Sample(times)


def alternated(actions: dict[str, Callable[[], object]], runs: int,
               before: Callable[[], object] | None = None) -> dict[str, Sample]:
    """Each action once per round, in turn, so a slow minute on a shared machine falls on every side alike."""
    times: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(runs):
        for name, action in actions.items():
            if before:
                before()
            start = time.perf_counter()
            action()
            times[name].append(time.perf_counter() - start)
    return {name: Sample(values) for name, values in times.items()}


def table(results: list[Result]) -> str:
    lines = ["| benchmark | ibgw-ops: median (min-max) | baseline | baseline: median (min-max) | measure | target "
             "| met |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r.name} | {r.subject.cell()} | {r.baseline_name} | {r.baseline.cell()} | {r.measure} | "
              f"{r.target} | {'yes' if r.met else 'no'} |" for r in results]
    return "\n".join(lines)
