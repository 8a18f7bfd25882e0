"""fit: settings that name a resource the destination lacks are refused by
name, or adapted with a warning that says what changed. Pure, no I/O."""

import pytest

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import fit
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import Refusal
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.hierarchies import Hierarchy
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.spec import Property
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.targets import Target
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.values import parse_id_list

HOST = fit.Destination(cpus=frozenset([0, 1]), mems=frozenset([0]), hugepage_sizes=frozenset(['2MB', '1GB']))


def target(hierarchy, *props):
    h = Hierarchy(name=hierarchy, mount_point='/sys/fs/cgroup/' + hierarchy, version=1,
                  controllers=frozenset([hierarchy]), dev='0:1', root='/', read_only=False)
    return Target(cgroup=None, hierarchy=h, path=('ct',), planned=False, props=tuple(props),
                  controllers=(hierarchy,))


def cpus(text):
    return Property('cpuset.cpus', parse_id_list(text), text)


def test_settings_that_fit_are_returned_unchanged():
    targets = [target('cpuset', cpus('0-1'), Property('cpuset.mems', frozenset([0]), '0')),
               target('devices', Property('devices.list', frozenset(['c 1:3 rwm', 'c 136:* rwm', 'b *:* m']), '')),
               target('hugetlb', Property('hugetlb.2MB.limit_in_bytes', 1 << 21, '2M'))]
    for policy in fit.POLICIES:
        fitted, warnings = fit.fit(targets, HOST, policy)
        assert fitted == targets and warnings == []
        assert all(a is b for a, b in zip(fitted, targets))


def test_a_cpu_the_host_lacks_is_refused_by_name():
    with pytest.raises(Refusal) as info:
        fit.fit([target('cpuset', cpus('0-3'))], HOST, 'refuse')
    message = str(info.value)
    assert 'cpuset:ct cpuset.cpus' in message
    assert 'CPUs 2-3' in message and 'it has 0-1' in message
    assert 'Nothing was written' in message and 'fit_destination=adapt' in message


def test_adapt_clamps_a_cpuset_to_what_the_host_has_and_says_so():
    fitted, warnings = fit.fit([target('cpuset', cpus('1-3'))], HOST, 'adapt')
    assert fitted[0].props[0].value == frozenset([1])
    assert fitted[0].props[0].spec_value == '1-3'  # the report still shows what the spec asked
    assert warnings == ['Adapted to this host: cpuset:ct cpuset.cpus: it names CPUs 2-3, which this host does '
                        'not have (it has 0-1); restoring 1.']


def test_adapt_uses_every_cpu_when_none_of_the_spec_exists():
    fitted, warnings = fit.fit([target('cpuset', cpus('4-7'))], HOST, 'adapt')
    assert fitted[0].props[0].value == frozenset([0, 1])
    assert 'restoring 0-1' in warnings[0]


def test_memory_nodes():
    with pytest.raises(Refusal) as info:
        fit.fit([target('cpuset', Property('cpuset.mems', frozenset([0, 1]), '0-1'))], HOST, 'refuse')
    assert 'memory node 1' in str(info.value)


def test_device_whitelists_are_not_checked():
    # a rule for a driver this host lacks allows nothing and harms nothing
    targets = [target('devices', Property('devices.list', ('c *:* m', 'c 195:0 rwm', 'b 8:* r'), ''))]
    assert fit.fit(targets, HOST, 'refuse') == (targets, [])


def test_a_huge_page_size_the_kernel_lacks():
    prop = Property('hugetlb.16GB.limit_in_bytes', 1 << 34, '16G')
    with pytest.raises(Refusal) as info:
        fit.fit([target('hugetlb', prop)], HOST, 'refuse')
    assert 'hugetlb:ct hugetlb.16GB.limit_in_bytes' in str(info.value)
    assert 'no 16GB huge pages (it has 1GB, 2MB)' in str(info.value)
    fitted, warnings = fit.fit([target('hugetlb', prop, Property('hugetlb.2MB.max', 1 << 21, '2M'))], HOST, 'adapt')
    assert [p.name for p in fitted[0].props] == ['hugetlb.2MB.max']
    assert 'not restored' in warnings[0]


def test_unknown_resources_are_not_checked():
    unknown = fit.Destination(cpus=None, mems=None, hugepage_sizes=None)
    targets = [target('cpuset', cpus('0-63'))]
    assert fit.fit(targets, unknown, 'refuse') == (targets, [])


@pytest.mark.parametrize('kilobytes,name', [(64, '64KB'), (2048, '2MB'), (32768, '32MB'),
                                            (1048576, '1GB'), (16777216, '16GB')])
def test_huge_page_size_names(kilobytes, name):
    assert fit.hugepage_size_name(kilobytes) == name
