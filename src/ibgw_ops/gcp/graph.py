"""Run work over a dependency graph: each node as soon as everything it needs is done, independent nodes at once.

Cloud calls spend their time waiting on operations, so threads give the concurrency; the wall time approaches
the graph's critical path instead of the sum of all calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")


class Skipped(Exception):
    """A node that never ran because something it needs failed."""

    def __init__(self, failed_need: str) -> None:
        super().__init__(f"skipped: {failed_need} failed")
        self.failed_need = failed_need


def run(needs: Mapping[str, Sequence[str]], work: Callable[[str], T], max_workers: int = 8,
        ) -> tuple[dict[str, T], dict[str, BaseException]]:
    """Call ``work(node)`` for every node after its needs succeeded; return (results, failures).

    A failure does not stop independent branches: they finish, so a rerun has less left to do. Nodes that
    need a failed one are reported as :class:`Skipped`.
    """
    unknown = {need for wanted in needs.values() for need in wanted if need not in needs}
    if unknown:
        raise ValueError(f"nodes need unknown nodes: {sorted(unknown)}")
    results: dict[str, T] = {}
    failures: dict[str, BaseException] = {}
    pending = dict(needs)
    running: dict[Future[T], str] = {}
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="graph") as pool:
        while pending or running:
            progressed = True
            while progressed:
                progressed = False
                for node, wanted in list(pending.items()):
                    failed = next((need for need in wanted if need in failures), None)
                    if failed is not None:
                        failures[node] = Skipped(failed)
                    elif all(need in results for need in wanted):
                        running[pool.submit(work, node)] = node
                    else:
                        continue
                    del pending[node]
                    progressed = True
            if not running:
                if pending:
                    raise ValueError(f"dependency cycle among {sorted(pending)}")
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                node = running.pop(future)
                error = future.exception()
                if error is None:
                    results[node] = future.result()
                else:
                    failures[node] = error
    return results, failures
