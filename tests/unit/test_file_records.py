"""properties.FILES, one record per cgroup file: the planner, observe,
translate and the applier's hints all read a file's record, so what the
record says is what happens. Pure."""

import errno

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import apply
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import properties as pr
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import translate
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import values as v
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.plan import Action
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.spec import Property


def test_every_file_of_a_pair_rule_has_a_record_of_order_pair():
    for pair in (pr.MEMORY_PAIR, pr.CFS_PAIR, pr.CPU_MAX_BURST):
        assert [pr.FILES[name].order for name in pair] == [pr.PAIR, pr.PAIR], pair
    # the cfs pair's order needs both values: each names the other as its partner
    period, quota = pr.CFS_PAIR
    assert (pr.FILES[period].partner, pr.FILES[quota].partner) == (quota, period)
    assert [name for name, f in pr.FILES.items() if f.partner] == [period, quota]


def test_a_records_version_is_what_translate_does_with_the_name():
    for name, record in pr.FILES.items():
        prop = Property(name, None, None)  # translate='never' decides on the name alone
        kept_on = [version for version in (1, 2) if translate.for_hierarchy([prop], version, 'never') == ([prop], {})]
        assert kept_on == ([1, 2] if record.version is None else [record.version]), (name, kept_on)


def test_a_file_without_a_record_gets_one_from_its_name():
    huge = pr.file_of('hugetlb.2MB.max')
    assert (huge.kind.granularity, huge.kind.unlimited_text, huge.version, huge.order) == (2 << 20, 'max', 2, pr.NORMAL)
    old = pr.file_of('hugetlb.1GB.limit_in_bytes')
    assert (old.kind.granularity, old.kind.unlimited_text, old.version) == (1 << 30, '-1', 1)
    assert isinstance(pr.file_of('memory.foo.limit_in_bytes').kind, v.MemorySize)
    assert pr.file_of('cpuset.new_flag').hints == pr.FILES['cpuset.cpus'].hints
    assert pr.file_of('frobnicator.level').hints == {} and pr.file_of('frobnicator.level').kind.__class__ is v.Kind


def _refusal(prop, code, context=None):
    action = Action('write', 'memory', ('ct',), prop, ((prop, '1'),), None, 1, 1, None)
    return apply.describe(action, OSError(code, 'refused'), context)


def test_the_hint_of_a_refused_write_is_its_files_record():
    assert 'free memory in it' in _refusal('memory.limit_in_bytes', errno.EBUSY, {'usage': '99'})
    assert '(memory.usage_in_bytes = 99)' in _refusal('memory.limit_in_bytes', errno.EBUSY, {'usage': '99'})
    assert 'swapaccount=1' in _refusal('memory.memsw.limit_in_bytes', errno.ENOENT)
    assert "inside the parent's cpuset.mems (0-1)" in _refusal('cpuset.mems', errno.EINVAL, {'parent_value': '0-1'})
    # a refusal the record has no hint for gets the generic one, or none
    assert _refusal('pids.max', errno.EINVAL).endswith('(EINVAL)')


def test_a_counterpart_is_read_from_the_record_both_ways():
    # given once, on the v1 file; the v2 file's record is its mirror image
    shares, weight = pr.FILES['cpu.shares'].counterpart, pr.FILES['cpu.weight'].counterpart
    assert (shares.name, weight.name) == ('cpu.weight', 'cpu.shares')
    assert (shares.to_other(1024), weight.to_other(100)) == (100, 1024)
    for name, record in pr.FILES.items():
        counterpart = record.counterpart
        if record.version == 1 and counterpart is not None and counterpart.name is not None:
            assert pr.FILES[counterpart.name].version == 2, name
            assert pr.FILES[counterpart.name].counterpart is not None, name
    # a pair's files name the other version's one file, and have no formula of their own
    assert [(pr.FILES[n].counterpart.name, pr.FILES[n].counterpart.to_other) for n in pr.CFS_PAIR] == [
        ('cpu.max', None), ('cpu.max', None)]
    assert pr.file_of('hugetlb.2MB.limit_in_bytes').counterpart.name == 'hugetlb.2MB.max'
    assert pr.file_of('hugetlb.2MB.rsvd.max').counterpart.name == 'hugetlb.2MB.rsvd.limit_in_bytes'


def test_a_new_counterpart_in_the_record_is_all_translate_needs(monkeypatch):
    # what adding cpu.cfs_burst_us <-> cpu.max.burst would take: one field in the v1 file's record
    burst = pr.FILES['cpu.cfs_burst_us']
    assert translate.for_hierarchy([Property('cpu.cfs_burst_us', 1000, 1000)], 2)[1] == {
        'cpu.cfs_burst_us': 'cgroup v2 has no counterpart'}
    files = dict(pr.FILES, **{'cpu.cfs_burst_us': burst._replace(counterpart=pr.SAME._replace(name='cpu.max.burst'))})
    pr.mirror_counterparts(files)
    monkeypatch.setattr(pr, 'FILES', files)
    assert translate.for_hierarchy([Property('cpu.cfs_burst_us', 1000, 1000)], 2) == (
        [Property('cpu.max.burst', 1000, {'cpu.cfs_burst_us': 1000})], {})
    assert translate.for_hierarchy([Property('cpu.max.burst', 500, 500)], 1) == (
        [Property('cpu.cfs_burst_us', 500, {'cpu.max.burst': 500})], {})
