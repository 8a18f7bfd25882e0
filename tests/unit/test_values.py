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


def test_devices_compare_as_sets_of_normalised_rules_and_keep_their_order():
    assert same('devices.list', ['c 1:3 mrw', 'b 8:* r'], 'b 8:* r\nc 1:3 rwm\n')
    assert same('devices.list', 'a', 'a *:* rwm')
    assert not same('devices.list', ['c 1:3 rw'], 'c 1:3 rwm')
    kind = properties.kind_of('devices.list')
    # the kernel lists the rules in the order they were allowed: written in the spec's order
    assert kind.writes(kind.parse(['c 1:5 rw', 'b 8:0 r'])) == [
        ('devices.deny', 'a'), ('devices.allow', 'c 1:5 rw'), ('devices.allow', 'b 8:0 r')]
    assert kind.read('c *:* m\nb *:* m\nc 1:3 rwm\n') == ('c *:* m', 'b *:* m', 'c 1:3 rwm')
    assert kind.render(kind.parse(['c 1:3 rwm', 'b 8:* r', 'c 1:3 mrw'])) == ['c 1:3 rwm', 'b 8:* r']
    assert kind.show(kind.parse(['c 136:* rwm', 'c 1:3 rwm'])) == 'c 136:* rwm, c 1:3 rwm'
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


def test_io_max_missing_device_or_key_means_max():
    # the kernel shows no line for a device whose limits are all max
    assert same('io.max', ['8:0 rbps=max'], '')
    assert same('io.max', ['8:0 rbps=max wiops=max'], '8:16 rbps=1000 wbps=max riops=max wiops=max\n')
    assert same('io.max', ['8:0 rbps=1000'], '8:0 rbps=1000 wbps=max riops=max wiops=max\n')
    assert same('io.max', ['8:0 wbps=max'], '8:0 rbps=1000\n')  # a key the kernel leaves out is max
    assert not same('io.max', ['8:0 rbps=1000'], '')
    assert not same('io.max', ['8:0 rbps=max'], '8:0 rbps=1000 wbps=max riops=max wiops=max\n')
    kind = properties.kind_of('io.max')
    target = kind.parse(['8:0 rbps=max', '8:16 wbps=2000'])
    assert kind.delta(target, kind.read('')) == ['8:16 wbps=2000']


def test_io_weight_device_default_means_no_line():
    assert same('io.weight', {'default': 100, '8:0': 'default'}, 'default 100\n')
    assert same('io.weight', ['8:0 200'], 'default 100\n8:0 200\n')
    assert not same('io.weight', ['8:0 default'], 'default 100\n8:0 200\n')
    assert not same('io.weight', ['default 200'], 'default 100\n')
    kind = properties.kind_of('io.weight')
    assert kind.delta(kind.parse(['8:0 default', '8:16 50']), kind.read('default 100\n')) == ['8:16 50']


def test_cpuset_partition_compares_the_type_the_kernel_keeps():
    assert same('cpuset.cpus.partition', 'root', 'root\n')
    assert same('cpuset.cpus.partition', 'root', 'root invalid (Parent is not a partition root)\n')
    assert same('cpuset.cpus.partition', 'root invalid (Cpu list in cpuset.cpus not exclusive)', 'root\n')
    assert same('cpuset.cpus.partition', 'member', 'member\n')
    assert not same('cpuset.cpus.partition', 'member', 'root invalid (Parent is not a partition root)\n')
    assert not same('cpuset.cpus.partition', 'isolated', 'root\n')
    kind = properties.kind_of('cpuset.cpus.partition')
    assert kind.show(kind.read('root invalid (Parent is not a partition root)\n')) == \
        'root invalid (Parent is not a partition root)'
    with pytest.raises(ValueError):
        kind.parse('leaf')


def test_memory_min_rounds_to_the_page_and_takes_max():
    assert same('memory.min', 100000000, '99999744') and same('memory.min', 'max', 'max')
    assert properties.kind_of('memory.min').render(v.UNLIMITED) == ['max']
