"""Memory in use read from cgroup files as ``docker stats`` counts it, on cgroup v2 and v1, nested or not."""

from __future__ import annotations

from pathlib import Path

from ibgw_ops.on_host.gateway_container import memory_in_use

SCOPE = "/system.slice/docker-abc.scope"


def tree(tmp_path: Path, membership: str, directory: str, usage_file: str, stat: str) -> tuple[str, str]:
    proc, cgroup = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "42").mkdir(parents=True)
    (proc / "42" / "cgroup").write_text(membership)
    group = cgroup / directory.lstrip("/")
    group.mkdir(parents=True)
    (group / usage_file).write_text("104857600\n")
    (group / "memory.stat").write_text(stat)
    return str(proc), str(cgroup)


def test_cgroup_v2_leaves_the_inactive_page_cache_out(tmp_path):
    proc, cgroup = tree(tmp_path, f"0::{SCOPE}\n", SCOPE, "memory.current", "anon 1\ninactive_file 4857600\n")
    assert memory_in_use(42, proc, cgroup) == 100_000_000


def test_cgroup_v1_nested_finds_the_group_by_the_path_s_suffix(tmp_path):
    membership = "12:pids:/docker/lab/docker/abc\n4:memory:/docker/lab/docker/abc\n1:name=systemd:/x\n0::/\n"
    proc, cgroup = tree(tmp_path, membership, "memory/docker/abc", "memory.usage_in_bytes",
                        "cache 9\ntotal_inactive_file 857600\n")
    assert memory_in_use(42, proc, cgroup) == 104_000_000


def test_a_gone_process_or_no_memory_controller_is_none(tmp_path):
    assert memory_in_use(7, str(tmp_path), str(tmp_path)) is None
    proc, cgroup = tree(tmp_path, "3:cpu:/docker/abc\n", "cpu/docker/abc", "cpu.shares", "")
    assert memory_in_use(42, proc, cgroup) is None
