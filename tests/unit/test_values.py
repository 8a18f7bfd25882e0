"""Value kinds: parse, read, compare as the kernel means, render."""

import pytest

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import properties, values as v


def same(prop, spec_value, kernel_text, page_size=4096):
    kind = properties.kind_of(prop)
    return kind.same(kind.parse(spec_value), kind.read(kernel_text), page_size)


@pytest.mark.parametrize('spec_value,kernel_text', [
    (100000000, '99999744'), ('512M', '536870912'), ('512m', '536870912'), ('1G', '1073741824'),
    (-1, '9223372036854771712'), ('-1', '9223372036854771712'), ('max', '9223372036854771712'),
    ('4096', '4096'), (4097, '4096'),
])
def test_memory_sizes_equal_after_kernel_rounding(spec_value, kernel_text):
    assert same('memory.limit_in_bytes', spec_value, kernel_text)


def test_memory_sizes_that_differ():
    assert not same('memory.limit_in_bytes', '512M', '268435456')
    assert not same('memory.limit_in_bytes', -1, '268435456')
    assert not same('memory.limit_in_bytes', 8192, '4096')


def test_memory_page_size_is_respected():
    assert same('memory.limit_in_bytes', 70000, '65536', page_size=65536)
    assert not same('memory.limit_in_bytes', 70000, '65536', page_size=4096)


def test_hugetlb_limits_round_to_the_huge_page():
    assert same('hugetlb.2MB.limit_in_bytes', '3M', str(2 << 20))


@pytest.mark.parametrize('bad', ['12Q', 'lots', '-5', '1.5G', [1, 2], {'a': 1}, '1\n2'])
def test_bad_memory_sizes_are_refused(bad):
    with pytest.raises(ValueError):
        properties.kind_of('memory.limit_in_bytes').parse(bad)


@pytest.mark.parametrize('spec_value,kernel_text', [
    ('0,1', '0-1'), ('0-1,2-3', '0-3'), ([0, 1, 2, 3], '0-3'), ('', ''), (3, '3'), ('0-0', '0')])
def test_cpusets_compare_as_sets(spec_value, kernel_text):
    assert same('cpuset.cpus', spec_value, kernel_text)


def test_cpuset_formatting_matches_the_kernel():
    assert v.format_id_list(frozenset([0, 1, 2, 3, 5, 7, 8])) == '0-3,5,7-8'
    assert v.format_id_list(frozenset()) == ''
    with pytest.raises(ValueError):
        v.parse_id_list('3-1')


def test_pids_max_and_cfs_quota_unlimited():
    assert same('pids.max', -1, 'max') and same('pids.max', 'max', 'max') and same('pids.max', 7, '7')
    assert same('cpu.cfs_quota_us', -1, '-1') and not same('cpu.cfs_quota_us', 50000, '-1')
    assert properties.kind_of('pids.max').render(v.UNLIMITED) == ['max']
    assert properties.kind_of('cpu.cfs_quota_us').render(v.UNLIMITED) == ['-1']


def test_cpu_shares_are_clamped_like_the_kernel():
    assert same('cpu.shares', 1, '2') and same('cpu.shares', 500000, '262144')


def test_devices_compare_as_sets_of_normalised_rules():
    assert same('devices.list', ['c 1:3 mrw', 'b 8:* r'], 'b 8:* r\nc 1:3 rwm\n')
    assert same('devices.list', 'a', 'a *:* rwm')
    assert not same('devices.list', ['c 1:3 rw'], 'c 1:3 rwm')
    kind = properties.kind_of('devices.list')
    assert kind.writes(kind.parse(['c 1:5 rw', 'b 8:0 r'])) == [
        ('devices.deny', 'a'), ('devices.allow', 'b 8:0 r'), ('devices.allow', 'c 1:5 rw')]
    with pytest.raises(ValueError):
        kind.parse(['x 1:3 rwm'])


def test_keyed_lines_compare_only_the_keys_asked_for():
    assert same('net_prio.ifpriomap', ['eth0 5'], 'lo 0\neth0 5\n')
    assert same('net_prio.ifpriomap', {'eth0': 5}, 'lo 0\neth0 5\n')
    assert not same('net_prio.ifpriomap', ['eth0 4'], 'lo 0\neth0 5\n')
    assert properties.kind_of('blkio.throttle.read_bps_device').render(
        properties.kind_of('blkio.throttle.read_bps_device').parse(['8:0 100', '8:16 200'])) == ['8:0 100', '8:16 200']


def test_oom_control_reads_the_kill_disable_line():
    assert same('memory.oom_control', 1, 'oom_kill_disable 1\nunder_oom 0\noom_kill 0\n')
    assert same('memory.oom_control', False, 'oom_kill_disable 0\nunder_oom 0\n')


def test_net_cls_classid_hex_and_decimal():
    assert same('net_cls.classid', '0x100001', '1048577')


def test_text_values_compare_integers_as_integers():
    assert same('cpu.some_future_knob', '010', '10')
    assert not same('cpu.some_future_knob', 'on', 'off')
