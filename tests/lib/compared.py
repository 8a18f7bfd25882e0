"""The settings files that the tests' independent readers compare, v1 and v2:
two snapshots that agree on these (plus every owner and mode) prove that a
failed or refused call left the sandbox as it was."""

COMPARED_FILES = (
    # cgroup v1
    'memory.limit_in_bytes', 'memory.memsw.limit_in_bytes', 'memory.soft_limit_in_bytes',
    'memory.swappiness', 'memory.use_hierarchy', 'memory.oom_control', 'cpu.shares', 'cpu.cfs_period_us',
    'cpu.cfs_quota_us', 'cpu.rt_runtime_us', 'cpuset.cpu_exclusive', 'devices.list', 'freezer.state',
    'blkio.weight', 'cgroup.clone_children', 'notify_on_release', 'tasks',
    # both
    'cpuset.cpus', 'cpuset.mems', 'pids.max', 'cgroup.procs',
    # cgroup v2
    'cgroup.subtree_control', 'cgroup.type', 'cgroup.freeze', 'cgroup.max.descendants', 'cgroup.max.depth',
    'memory.max', 'memory.high', 'memory.low', 'memory.min', 'memory.swap.max', 'cpu.max', 'cpu.weight',
    'io.max', 'io.weight', 'cpuset.cpus.partition', 'hugetlb.2MB.max', 'hugetlb.1GB.max')


def setting_differences(expected, got):
    """(cgroup key, setting) pairs where two listings differ; a cgroup that
    one of them lacks is (key, 'cgroup')."""
    found = set()
    for key in set(expected) | set(got):
        if key not in expected or key not in got:
            found.add((key, 'cgroup'))
        else:
            names = set(expected[key]) | set(got[key])
            found.update((key, name) for name in names if expected[key].get(name) != got[key].get(name))
    return found
