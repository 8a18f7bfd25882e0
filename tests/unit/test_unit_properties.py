"""unit_properties.TABLE and systemd_unit's pure decisions: each file's
unit properties and formula (docs/SYSTEMD.md), systemd's CPUQuota=
arithmetic, unmapped files refused by cgroup and property, and hosts that
are not systemd on pure cgroup v2 refused (a fake hierarchy list)."""

import pytest

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import hierarchies as hz
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import spec as sp
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import systemd_unit as su
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import unit_properties as up
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import Refusal, SpecError


def top(props):
    spec = sp.load_spec({'version': 1, 'cgroups': {'ct1': props}})
    return spec.cgroups[0]


def assigned(props):
    settings = su.unit_settings(top(props), 'ct1.service')
    return [a for name in sorted(settings) for a in up.assignments(name, settings[name])]


@pytest.mark.parametrize('props, wanted', [
    ({'memory.max': '100M'}, [('MemoryMax', '104857600')]),
    ({'memory.max': 'max'}, [('MemoryMax', 'infinity')]),
    ({'memory.high': '1G'}, [('MemoryHigh', '1073741824')]),
    ({'memory.low': 4096}, [('MemoryLow', '4096')]),
    ({'memory.min': 8192}, [('MemoryMin', '8192')]),
    ({'memory.max': 'max', 'memory.swap.max': '0'}, [('MemoryMax', 'infinity'), ('MemorySwapMax', '0')]),
    ({'pids.max': 20}, [('TasksMax', '20')]),
    ({'pids.max': 'max'}, [('TasksMax', 'infinity')]),
    ({'cpu.weight': 50}, [('CPUWeight', '50')]),
    ({'cpu.max': '50000 100000'}, [('CPUQuota', '50%'), ('CPUQuotaPeriodSec', '100000us')]),
    ({'cpu.max': '150000 50000'}, [('CPUQuota', '300%'), ('CPUQuotaPeriodSec', '50000us')]),
    ({'cpu.max': '33333 100000'}, [('CPUQuota', '33.33%'), ('CPUQuotaPeriodSec', '100000us')]),
    ({'cpu.max': 'max 100000'}, [('CPUQuota', ''), ('CPUQuotaPeriodSec', '100000us')]),
    ({'cpuset.cpus': '0-1,3'}, [('AllowedCPUs', '0-1,3')]),
    ({'cpuset.mems': '0'}, [('AllowedMemoryNodes', '0')]),
    ({'io.weight': ['default 200', '8:0 50']}, [('IODeviceWeight', '/dev/block/8:0 50'), ('IOWeight', '200')]),
    ({'io.max': ['8:0 rbps=1048576 wbps=max riops=100 wiops=200']},
     [('IOReadBandwidthMax', '/dev/block/8:0 1048576'), ('IOWriteBandwidthMax', '/dev/block/8:0 infinity'),
      ('IOReadIOPSMax', '/dev/block/8:0 100'), ('IOWriteIOPSMax', '/dev/block/8:0 200')]),
])
def test_each_file_becomes_its_unit_properties(props, wanted):
    assert sorted(assigned(props)) == sorted(wanted)


def test_v1_names_are_translated_first_with_the_translation_formulas():
    # cpu.shares 512 -> cpu.weight 50; cfs quota/period -> cpu.max; limit_in_bytes -> memory.max
    got = assigned({'cpu.shares': 512, 'cpu.cfs_quota_us': 20000, 'cpu.cfs_period_us': 100000,
                    'memory.limit_in_bytes': '64M', 'blkio.weight': 500})
    assert sorted(got) == sorted([('CPUWeight', '50'), ('CPUQuota', '20%'), ('CPUQuotaPeriodSec', '100000us'),
                                  ('MemoryMax', '67108864'), ('IOWeight', '100')])


def test_systemds_cpu_quota_arithmetic_is_what_is_read_back():
    assert up.systemd_cpu_max(50000, 100000) == (50000, 100000)
    assert up.systemd_cpu_max(33333, 100000) == (33330, 100000)  # 1/100 % steps
    assert up.systemd_cpu_max(500, 100000) == (1000, 100000)  # at least 1 ms
    assert up.expected('cpu.max', (33333, None)) == (33330, 100000)


def test_every_table_row_is_a_known_v2_file():
    from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import properties
    for name in up.TABLE:
        assert name in properties.FILES, name


@pytest.mark.parametrize('props, named', [
    ({'memory.oom.group': 1}, 'property memory.oom.group'),
    ({'memory.max': '1G', 'cpu.idle': 1}, 'property cpu.idle'),
])
def test_an_unmapped_file_is_refused_by_cgroup_and_property(props, named):
    with pytest.raises(Refusal) as caught:
        su.unit_settings(top(props), 'ct1.service')
    assert named in str(caught.value) and 'ct1' in str(caught.value) and 'Nothing was done' in str(caught.value)


def test_an_unmappable_v1_file_is_refused_by_name():
    with pytest.raises(Refusal) as caught:
        su.unit_settings(top({'memory.swappiness': 10}), 'ct1.service')
    assert 'memory.swappiness' in str(caught.value)


def _h(mount_point, version, controllers=()):
    return hz.Hierarchy(name='' if version == 2 else ','.join(controllers), mount_point=mount_point,
                        version=version, controllers=frozenset(controllers), dev=None, root='/', read_only=False)


def test_pure_v2_with_systemd_is_accepted():
    su.check_host([_h('/sys/fs/cgroup', 2, ('memory', 'pids'))], 'systemd')


@pytest.mark.parametrize('hierarchies, word', [
    ([_h('/sys/fs/cgroup/memory', 1, ('memory',)), _h('/sys/fs/cgroup/systemd', 1, ('name=systemd',))], 'v1'),
    ([_h('/sys/fs/cgroup/memory', 1, ('memory',)), _h('/sys/fs/cgroup/unified', 2)], 'hybrid'),
    ([], 'no cgroup hierarchy'),
])
def test_v1_and_hybrid_hosts_are_refused(hierarchies, word):
    with pytest.raises(Refusal) as caught:
        su.check_host(hierarchies, 'systemd')
    assert 'not pure cgroup v2' in str(caught.value) and 'cgroup v1 or hybrid' in str(caught.value)


def test_a_host_without_systemd_as_pid_1_is_refused():
    with pytest.raises(Refusal) as caught:
        su.check_host([_h('/sys/fs/cgroup', 2)], 'init')
    assert "PID 1 is 'init', not systemd" in str(caught.value) and 'cgroup_restore' in str(caught.value)


def test_refused_host_runs_nothing():
    calls = []

    def runner(argv):
        calls.append(argv)
        return 0, '', ''
    with pytest.raises(Refusal):
        su.run({'unit': 'ct1.service', 'spec': {'version': 1, 'cgroups': {'ct1': {'pids.max': 5}}}},
               systemd=su.Systemd(runner), hierarchies=[_h('/sys/fs/cgroup/memory', 1, ('memory',))], pid1='systemd')
    assert calls == []


@pytest.mark.parametrize('name, path', [('machine.slice', ('machine.slice',)), ('-.slice', ()),
                                        ('a-b.slice', ('a.slice', 'a-b.slice'))])
def test_slice_paths(name, path):
    assert su.slice_path(name) == path


@pytest.mark.parametrize('bad', ['ct1', 'ct1.scope', 'a/b.service', '.service'])
def test_unit_names_are_services(bad):
    with pytest.raises(SpecError):
        su.unit_name(bad)


def test_the_top_is_the_one_top_level_cgroup_and_children_are_relative():
    spec = sp.load_spec({'version': 1, 'cgroups': {'ct1': {'pids.max': 5}, 'ct1/a': {'pids.max': 2},
                                                   'ct1/a/b': {}}})
    top_cg, top_path, children = su.split_spec(spec, None)
    assert top_path == ('ct1',) and top_cg.path == ('ct1',)
    assert sorted(c.path for c in children) == [('a',), ('a', 'b')]
    with pytest.raises(SpecError):
        su.split_spec(sp.load_spec({'version': 1, 'cgroups': {'x': {}, 'y': {}}}), None)


def test_a_snapshots_unmapped_files_at_a_new_cgroups_values_are_accepted():
    """cgroup_snapshot captures every built-in file of the top-level cgroup;
    those no unit property sets ask for nothing at their defaults."""
    snapshot_top = top({'memory.max': '100M', 'pids.max': 20, 'cgroup.freeze': 0, 'cgroup.max.depth': 'max',
                        'cgroup.max.descendants': 'max', 'cpu.idle': 0, 'memory.oom.group': 0,
                        'cpuset.cpus.partition': 'member', 'cpuset.cpus': '', 'io.max': ''})
    settings = su.unit_settings(snapshot_top, 'ct1.service')
    assert sorted(settings) == ['cpuset.cpus', 'io.max', 'memory.max', 'pids.max']
    with pytest.raises(Refusal) as caught:
        su.unit_settings(top({'cgroup.max.depth': 3, 'cgroup.freeze': 0}), 'ct1.service')
    assert 'property cgroup.max.depth' in str(caught.value) and 'cgroup.freeze' not in str(caught.value)


def test_a_mapped_file_missing_from_the_units_cgroup_means_its_default():
    files = {'/u/memory.max': '104857600\n'}
    settings = {'memory.max': 104857600, 'cpuset.cpus': frozenset(), 'io.max': (), 'pids.max': 20}
    found = su.drift(settings, '/u', 4096, read=files.get)
    assert sorted(found) == ['pids.max'], found  # pids.max 20 is no default: missing is a difference


def test_the_holder_leaf_of_a_snapshot_of_such_a_unit_is_not_restored():
    data = {'version': 1, 'cgroups': {'machine.slice/ct1.service': {'pids.max': 5},
                                      'machine.slice/ct1.service/holder': {'pids.max': 'max'},
                                      'machine.slice/ct1.service/app': {'pids.max': 2}}}
    _top, top_path, children = su.split_spec(sp.load_spec(data), 'machine.slice/ct1.service')
    assert top_path == ('machine.slice', 'ct1.service') and [c.path for c in children] == [('app',)]
    assert su._children_data(data, top_path) == {'app': {'pids.max': 2}}
