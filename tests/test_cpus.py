"""threads=0 means the CPUs this process may use: affinity mask and cgroup CPU quota (hand-built cgroup trees)."""

import os

import pytest

from edgesdk.cpus import available_cpus, cgroup_cpu_limit


def tree(tmp_path, membership, files):
    """A cgroup filesystem under tmp_path/cg and a /proc/self/cgroup naming the process's groups."""
    root = tmp_path / "cg"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    root.mkdir(exist_ok=True)
    (tmp_path / "cgroup").write_text(membership)
    return root, tmp_path / "cgroup"


@pytest.mark.parametrize(
    "membership,files,limit",
    [
        # v2: 150 ms per 100 ms period is 1.5 CPUs; "max" above it is no limit.
        ("0::/user.slice/app\n", {"user.slice/app/cpu.max": "150000 100000\n", "user.slice/cpu.max": "max 100000\n"}, 1.5),
        # v2: a parent's quota binds its child, however generous the child's.
        ("0::/a/b\n", {"a/b/cpu.max": "max 100000\n", "a/cpu.max": "50000 100000\n"}, 0.5),
        ("0::/a/b\n", {"a/b/cpu.max": "400000 100000\n", "a/cpu.max": "200000 100000\n"}, 2.0),
        # v2 without any quota.
        ("0::/a\n", {"a/cpu.max": "max 100000\n", "cpu.max": "max 100000\n"}, None),
        # v1, cpu and cpuacct mounted together; -1 is no quota.
        ("4:cpu,cpuacct:/docker/abc\n1:name=systemd:/\n",
         {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "200000\n", "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n"}, 2.0),
        ("4:cpu,cpuacct:/\n", {"cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, None),
        # A container: /proc/self/cgroup names the host's path, absent from the container's own mount,
        # whose root holds the container's quota.
        ("0::/system.slice/docker-1234.scope\n", {"cpu.max": "250000 100000\n"}, 2.5),
        # Not in any cgroup with a cpu controller.
        ("7:memory:/x\n", {"memory/x/memory.max": "max\n"}, None),
    ],
)
def test_cgroup_cpu_quota(tmp_path, membership, files, limit):
    root, cgroup_file = tree(tmp_path, membership, files)
    assert cgroup_cpu_limit(root, cgroup_file) == limit


def test_no_cgroup_information_is_no_limit(tmp_path):
    assert cgroup_cpu_limit(tmp_path / "none", tmp_path / "no-such-file") is None
    root, cgroup_file = tree(tmp_path, "0::/a\n", {"a/cpu.max": "garbage\n"})
    assert cgroup_cpu_limit(root, cgroup_file) is None


def test_available_cpus_is_the_affinity_capped_by_the_quota_rounded_up(tmp_path):
    cpus = len(os.sched_getaffinity(0))
    root, cgroup_file = tree(tmp_path, "0::/\n", {"cpu.max": "max 100000\n"})
    assert available_cpus(root, cgroup_file) == cpus
    root, cgroup_file = tree(tmp_path / "q", "0::/\n", {"cpu.max": "50000 100000\n"})
    assert available_cpus(root, cgroup_file) == 1  # half a CPU still needs one thread
    root, cgroup_file = tree(tmp_path / "big", "0::/\n", {"cpu.max": f"{(cpus + 8) * 100000} 100000\n"})
    assert available_cpus(root, cgroup_file) == cpus  # a quota above the cores does not add any


def test_a_process_pinned_to_one_cpu_gets_one_thread_everywhere():
    from edgesdk.eval import default_workers

    mask = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(mask)})
        assert available_cpus() == 1 and default_workers() == 1
    finally:
        os.sched_setaffinity(0, mask)
