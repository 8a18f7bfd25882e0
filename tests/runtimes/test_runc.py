"""A real runc container (Debian's runc 1.1, cgroupfs driver, busybox rootfs)
with limits in its config.json, its cgroup below a test sandbox's subtree:
snapshot it from the host, delete the container (runc removes its cgroup),
restore the snapshot, and every file runc set reads the same in the kernel
as it did while the container ran, in every hierarchy."""

import os

import pytest

from modrun import module_path, run_calls
from runtimes import HostView, RuncContainer, read_file, require_tools, v1_hierarchy_dirs

pytestmark = pytest.mark.kernel

MB = 1 << 20
RESOURCES = {
    'memory': {'limit': 128 * MB, 'reservation': 64 * MB, 'swap': 256 * MB},
    'pids': {'limit': 20},
    'cpu': {'shares': 256, 'quota': 50000, 'period': 100000, 'cpus': '0', 'mems': '0'},
    'devices': [
        {'allow': False, 'access': 'rwm'},
        {'allow': True, 'type': 'c', 'major': 1, 'minor': 3, 'access': 'rwm'},
        {'allow': True, 'type': 'c', 'major': 4, 'access': 'rw'},
    ],
}
# The files runc 1.1's cgroupfs driver writes for RESOURCES, per hierarchy,
# with what the kernel then shows (None: only compared, e.g. the device list,
# to which runc adds its default devices).
RUNC_SETS = {
    'memory': {'memory.limit_in_bytes': str(128 * MB), 'memory.soft_limit_in_bytes': str(64 * MB),
               'memory.memsw.limit_in_bytes': str(256 * MB)},
    'pids': {'pids.max': '20'},
    'cpu': {'cpu.shares': '256', 'cpu.cfs_quota_us': '50000', 'cpu.cfs_period_us': '100000'},
    'cpuset': {'cpuset.cpus': '0', 'cpuset.mems': '0'},
    'freezer': {'freezer.state': 'THAWED'},
    'devices': {'devices.list': None},
    # blkio.weight, or blkio.bfq.weight on kernels whose blkio has BFQ's files only
    'blkio': {'blkio.weight': '300', 'blkio.bfq.weight': '300'},
}


DIR_OF = v1_hierarchy_dirs()  # controller -> the host's hierarchy directory


def blkio_weight_file():
    """The weight file of the host's blkio hierarchy: blkio.weight (CFQ) or
    blkio.bfq.weight (BFQ); None on a kernel with neither scheduler's files
    (6.18 with mq-deadline and kyber only), where runc refuses a blockIO
    weight: "openat2 .../blkio.bfq.weight: no such file or directory"."""
    root = os.path.join('/sys/fs/cgroup', DIR_OF.get('blkio', 'blkio'))
    for name in ('blkio.weight', 'blkio.bfq.weight'):
        if os.path.exists(os.path.join(root, name)):
            return name
    return None


BLKIO_WEIGHT = blkio_weight_file()
if BLKIO_WEIGHT:
    RESOURCES['blockIO'] = {'weight': 300}


def runc_sets(hierarchy):
    """The files of RUNC_SETS that live in a hierarchy directory."""
    files = {}
    for controller, sets in RUNC_SETS.items():
        if DIR_OF.get(controller) == hierarchy:
            files.update(sets)
    return files


@pytest.fixture(autouse=True)
def runc_installed():
    require_tools('runc', 'runc')


@pytest.fixture
def container(sandbox):
    made = RuncContainer(sandbox, RESOURCES)
    try:
        yield made.create()
    finally:
        left = made.destroy()
        assert not left, 'runc left behind: %s' % left


def host_module(sandbox, name, **args):
    result = run_calls(HostView(sandbox), [(args, False, False)], module=module_path(name))[0]
    assert not result.get('failed'), result
    return result


def settings(sandbox, cgroup, names_of):
    """{hierarchy: {file: text}} of the cgroup, read from the kernel's files;
    names_of(hierarchy, files present) says which files."""
    found = {}
    for hierarchy in sorted(sandbox.hierarchies):
        where = os.path.join('/sys/fs/cgroup', hierarchy, cgroup)
        present = set(os.listdir(where))
        found[hierarchy] = dict((name, read_file(where, name)) for name in sorted(names_of(hierarchy, present)))
    return found


def test_runc_snapshot_delete_restore(sandbox, container):
    container.start()
    ct = container.cgroup
    runc_files = settings(sandbox, ct, lambda h, present: set(runc_sets(h)) & present)
    # runc set them as its config says (a file the kernel lacks is not compared)
    for hierarchy in runc_files:
        for name, value in runc_sets(hierarchy).items():
            if value is not None and name in runc_files[hierarchy]:
                assert runc_files[hierarchy][name] == value, (hierarchy, name)
    assert 'c 1:3 rwm' in runc_files[DIR_OF['devices']]['devices.list'].splitlines()
    if BLKIO_WEIGHT:
        assert runc_files[DIR_OF['blkio']][BLKIO_WEIGHT] == '300', 'runc set no blkio weight'

    # builtin (CRIU's list) has neither freezer.state nor blkio.bfq.weight, which runc sets; writable has both
    spec = host_module(sandbox, 'cgroup_snapshot', paths=[ct], properties=['writable'])['spec']
    props = spec['cgroups'][ct]['properties']
    for files in RUNC_SETS.values():
        for name in files:
            if any(name in present for present in runc_files.values()):
                assert name in props, 'the snapshot did not capture %s' % name
    captured = settings(sandbox, ct, lambda h, present: set(props) & present)

    container.delete()
    for hierarchy in sorted(sandbox.hierarchies):
        assert not os.path.exists(os.path.join('/sys/fs/cgroup', hierarchy, ct)), hierarchy

    restored = host_module(sandbox, 'cgroup_restore', spec=spec)
    assert restored['changed'] is True
    assert sorted(c['hierarchy'] for c in restored['created'] if c['cgroup'] == ct) == sorted(sandbox.hierarchies)
    after_runc = settings(sandbox, ct, lambda h, present: set(runc_sets(h)) & present)
    after_all = settings(sandbox, ct, lambda h, present: set(props) & present)
    for before, after in ((runc_files, after_runc), (captured, after_all)):
        for hierarchy in before:
            for name, text in before[hierarchy].items():
                if name == 'devices.list':
                    # the kernel lists allowed devices in the order they were allowed; compared as a set here
                    assert sorted(after[hierarchy][name].splitlines()) == sorted(text.splitlines())
                else:
                    assert after[hierarchy][name] == text, (hierarchy, name)

    again = host_module(sandbox, 'cgroup_restore', spec=spec)
    assert again['changed'] is False, again
