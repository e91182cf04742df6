import threading

import pytest

from ibgw_ops.gcp import graph


def test_each_node_runs_after_its_needs():
    order: list[str] = []
    lock = threading.Lock()

    def work(node: str) -> str:
        with lock:
            order.append(node)
        return node.upper()

    needs = {"net": (), "subnet": ("net",), "fw": ("net",), "ip": ("subnet",), "vm": ("subnet", "ip")}
    results, failures = graph.run(needs, work)
    assert failures == {}
    assert results == {node: node.upper() for node in needs}
    for node, wanted in needs.items():
        assert all(order.index(need) < order.index(node) for need in wanted)


def test_independent_nodes_run_at_the_same_time():
    both = threading.Barrier(2, timeout=10)
    graph.run({"a": (), "b": ()}, lambda node: both.wait())


def test_a_failure_skips_what_needs_it_and_lets_the_rest_finish():
    def work(node: str) -> None:
        if node == "subnet":
            raise RuntimeError("quota")

    needs = {"vm": ("ip",), "ip": ("subnet",), "subnet": ("net",), "net": (), "fw": ("net",)}
    results, failures = graph.run(needs, work)
    assert set(results) == {"net", "fw"}
    assert str(failures["subnet"]) == "quota"
    assert isinstance(failures["ip"], graph.Skipped)
    assert isinstance(failures["vm"], graph.Skipped)


def test_a_cycle_or_an_unknown_need_is_refused():
    with pytest.raises(ValueError, match="cycle"):
        graph.run({"a": ("b",), "b": ("a",)}, lambda node: None)
    with pytest.raises(ValueError, match="unknown"):
        graph.run({"a": ("x",)}, lambda node: None)
