# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the collection knows about each cgroup file, in one record per file
(FILES): its value kind, its write-order class, the partner its order needs,
whether it is a cgroup v1 or v2 name, its counterpart in the other version
(with the formulas both ways), and the hints for the kernel's refusals.
Also which files are settings at all, and which controller owns each."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import re
from collections import namedtuple

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import values as v

# Core files that every hierarchy has and that may be restored.
CORE_SETTINGS = ('cgroup.clone_children', 'notify_on_release')

# Files that move processes, run programs or trigger actions: never written.
NEVER_WRITTEN = {
    'cgroup.procs': 'it moves processes; moving tasks is the restorer\'s job',
    'tasks': 'it moves processes; moving tasks is the restorer\'s job',
    'cgroup.threads': 'it moves threads; moving tasks is the restorer\'s job',
    'cgroup.kill': 'it kills every process in the cgroup',
    'release_agent': 'it names a program the kernel runs as root',
    'cgroup.event_control': 'it registers event listeners, not a setting',
    'cgroup.sane_behavior': 'it is read-only',
    'memory.force_empty': 'it reclaims memory, it is not a setting',
    'memory.reclaim': 'it reclaims memory, it is not a setting',
    'memory.pressure_level': 'it registers event listeners, not a setting',
    'devices.allow': 'it is write-only; give the whole whitelist as devices.list',
    'devices.deny': 'it is write-only; give the whole whitelist as devices.list',
}

# Statistics and other read-only files.
_READ_ONLY_RE = re.compile(
    r'(\.stat|\.numa_stat|usage_in_bytes|\.failcnt|\.usage|\.usage_.*|\.slabinfo'
    r'|\.effective_cpus|\.effective_mems|\.memory_pressure|\.events(\.local)?'
    r'|\.current|\.peak|\.pressure|\.controllers)$')
_NAME_RE = re.compile(r'^[a-z][a-z0-9_]*(\.[A-Za-z0-9_]+)+$|^notify_on_release$|^tasks$')
_HUGETLB_RE = re.compile(r'^hugetlb\.([0-9]+)([KMG]B)\.(limit_in_bytes|max|rsvd\.limit_in_bytes|rsvd\.max)$')
_HUGE_UNITS = {'KB': 1 << 10, 'MB': 1 << 20, 'GB': 1 << 30}

# Write-order classes (docs/ARCHITECTURE.md, "The order of writes"; phases.py
# applies them):
EARLY = 'early'    # right after mkdir: a new cgroup's children need it
SET = 'set'        # a hierarchical set (cpuset): widened top-down, narrowed bottom-up; early in a new cgroup
NUMBER = 'number'  # a hierarchical number: raised top-down, lowered bottom-up
PAIR = 'pair'      # ordered with its pair's other file (the pair rules below); alone, normal
LAST = 'last'      # after every other write (freezing)
NORMAL = 'normal'  # top-down, after the early ones

# The pairs whose order depends on both files' values (phases.py has the rules):
MEMORY_PAIR = ('memory.limit_in_bytes', 'memory.memsw.limit_in_bytes')
CFS_PAIR = ('cpu.cfs_period_us', 'cpu.cfs_quota_us')
# cgroup v2's burst must stay within cpu.max's quota at every step
CPU_MAX_BURST = ('cpu.max.burst', 'cpu.max')

# What to tell the user when the kernel refuses a write to a file:
# {errno: text}; {usage} is filled with the cgroup's memory use, {parent} with
# the parent's value of the file, {prop} with the file's name (apply.py).
_MEMORY_LIMIT_HINTS = {
    errno.EBUSY: 'the cgroup uses more memory than the new limit{usage}; free memory in it or choose a higher limit'}
_MEMSW_HINTS = {
    errno.EBUSY: _MEMORY_LIMIT_HINTS[errno.EBUSY],
    errno.EINVAL: 'memory.memsw.limit_in_bytes must stay at least memory.limit_in_bytes',
    errno.ENOENT: 'swap accounting is off: boot with swapaccount=1, or use missing_properties=warn'}
_CFS_HINTS = {errno.EINVAL: ('the kernel keeps every child\'s CPU share (quota/period) within its parent\'s; '
                             'check this cgroup\'s parent and children')}
_CPUSET_INSIDE = ('the CPUs or memory nodes must exist and lie inside the parent\'s {prop}{parent}, and a child\'s '
                  'must lie inside this one\'s')
_CPUSET_HINTS = {
    errno.ENOSPC: ('a cpuset that has tasks cannot be left without CPUs or memory nodes; give it CPUs and '
                   'memory nodes, or move its tasks out first'),
    errno.EINVAL: _CPUSET_INSIDE, errno.ERANGE: _CPUSET_INSIDE, errno.EBUSY: _CPUSET_INSIDE}
_DEVICES_HINTS = dict.fromkeys(
    (errno.EPERM, errno.EINVAL),
    'a cgroup may not allow devices that its parent denies, and deny-all needs a cgroup with no children')
_NO_HINTS = {}

# How a file's setting is said in the other cgroup version (translate.py
# applies it; docs/TRANSLATION.md explains each formula):
#   name        the other version's file; None where the setting needs no
#               file there (the value is checked, then dropped)
#   to_other    this file's value -> the other file's value
#   from_other  the other file's value -> this file's value
# A formula raises Unmappable(reason) for a value the other version cannot
# say. Given on the v1 file; the v2 file's record gets the mirror image
# (mirror_counterparts). A counterpart without formulas (None) is a pair's:
# both files together make the other version's one file, by the pair's
# formula in translate.py (memsw and the limit, the cfs quota and period).
Counterpart = namedtuple('Counterpart', 'name to_other from_other')


class Unmappable(ValueError):
    """A value that the other cgroup version cannot say; str() is why."""


def _same(value):
    return value


def shares_to_weight(shares):
    """Proportional, as systemd does: 1024 shares (the v1 default) is weight
    100 (the v2 default), and ratios between siblings are kept. Rounded to
    the nearest weight, where systemd's integer division truncates."""
    return max(1, min(10000, int(round(shares * 100.0 / 1024))))


def weight_to_shares(weight):
    return max(2, min(262144, int(round(weight * 1024.0 / 100))))


def blkio_to_io_weight(weight):
    """Proportional too: 500 (the v1 default) is 100 (the v2 default)."""
    return max(1, min(10000, int(round(weight / 5.0))))


def io_to_blkio_weight(weight):
    return max(10, min(1000, int(round(weight * 5.0))))


def _blkio_to_io(weight):
    return (('default', str(blkio_to_io_weight(weight))),)


def _io_to_blkio(io_weight):
    default = dict(io_weight).get('default')
    if default is None or len(io_weight) > 1:
        raise Unmappable('only a default weight maps to blkio.weight')
    return io_to_blkio_weight(int(default))


def _frozen_to_freeze(state):
    return 1 if state == 'FROZEN' else 0


def _freeze_to_frozen(freeze):
    return 'FROZEN' if freeze else 'THAWED'


def _always_hierarchical(use_hierarchy):
    if use_hierarchy != 1:
        raise Unmappable('cgroup v2 is always hierarchical')


def _soft_limit_to_low(soft_limit):
    """An unlimited soft limit protects nothing: memory.low 0."""
    return 0 if soft_limit == v.UNLIMITED else soft_limit


SAME = Counterpart(None, _same, _same)  # the same value under the name given: SAME._replace(name=...)


def _same_as(name):
    return SAME._replace(name=name)


def _paired(name):
    """The counterpart of a pair's file, translated by the pair's formula."""
    return Counterpart(name, None, None)


# Everything the collection knows about one cgroup file:
#   kind     its value kind (values.py): how a spec value is parsed, the
#            kernel's text read, the two compared and the text to write rendered
#   order    its write-order class (above)
#   partner  the file whose live value its write order needs too, which
#            observe reads with it where the spec names only this one
#   version  1: a cgroup v1 name, 2: a cgroup v2 name, None: the same name
#            and meaning in both (translate.py translates the others; its
#            formulas are in docs/TRANSLATION.md)
#   hints    {errno: text} for the kernel's refusals of a write (above)
#   counterpart  a Counterpart (above): the file that says this setting in
#            the other version, and the formulas; None: it has none there
# A new file, such as cpu.max.burst, is added here, in one line (and its
# counterpart, if any, is one field of its v1 file's line).
File = namedtuple('File', 'kind order partner version hints counterpart')


def _file(kind, order=NORMAL, version=1, partner=None, hints=None, counterpart=None):
    return File(kind, order, partner, version, hints if hints is not None else _NO_HINTS, counterpart)


_V2 = 2
_BOTH = None
FILES = {
    'memory.limit_in_bytes': _file(v.MemorySize(), PAIR, hints=_MEMORY_LIMIT_HINTS,
                                   counterpart=_same_as('memory.max')),
    'memory.memsw.limit_in_bytes': _file(v.MemorySize(), PAIR, hints=_MEMSW_HINTS,
                                         counterpart=_paired('memory.swap.max')),
    'memory.soft_limit_in_bytes': _file(v.MemorySize(), hints=_MEMORY_LIMIT_HINTS,
                                        counterpart=Counterpart('memory.low', _soft_limit_to_low, _same)),
    'memory.kmem.limit_in_bytes': _file(v.MemorySize(), hints=_MEMORY_LIMIT_HINTS),
    'memory.kmem.tcp.limit_in_bytes': _file(v.MemorySize(), hints=_MEMORY_LIMIT_HINTS),
    'memory.swappiness': _file(v.Integer(0, 200)),
    'memory.use_hierarchy': _file(v.Flag(), EARLY, counterpart=Counterpart(None, _always_hierarchical, None)),
    'memory.move_charge_at_immigrate': _file(v.Integer(0, 3)),
    'memory.oom_control': _file(v.OomControl()),
    'cpu.shares': _file(v.Integer(2, 262144, clamp=True),
                        counterpart=Counterpart('cpu.weight', shares_to_weight, weight_to_shares)),
    'cpu.cfs_period_us': _file(v.Integer(1000, 1000000), PAIR, partner='cpu.cfs_quota_us', hints=_CFS_HINTS,
                               counterpart=_paired('cpu.max')),
    'cpu.cfs_quota_us': _file(v.Integer(1000, None, unlimited_text='-1'), PAIR, partner='cpu.cfs_period_us',
                              hints=_CFS_HINTS, counterpart=_paired('cpu.max')),
    'cpu.cfs_burst_us': _file(v.Integer(0, None), hints=_CFS_HINTS),
    'cpu.rt_period_us': _file(v.Integer(1, None)),
    'cpu.rt_runtime_us': _file(v.Integer(None, None, unlimited_text='-1'), NUMBER),
    'cpu.idle': _file(v.Flag(), version=_BOTH),
    'cpuset.cpus': _file(v.IdList(), SET, _BOTH, hints=_CPUSET_HINTS),
    'cpuset.mems': _file(v.IdList(), SET, _BOTH, hints=_CPUSET_HINTS),
    'cpuset.cpu_exclusive': _file(v.Flag(), hints=_CPUSET_HINTS),
    'cpuset.mem_exclusive': _file(v.Flag(), hints=_CPUSET_HINTS),
    'cpuset.mem_hardwall': _file(v.Flag(), hints=_CPUSET_HINTS),
    'cpuset.memory_migrate': _file(v.Flag(), hints=_CPUSET_HINTS),
    'cpuset.memory_spread_page': _file(v.Flag(), hints=_CPUSET_HINTS),
    'cpuset.memory_spread_slab': _file(v.Flag(), hints=_CPUSET_HINTS),
    'cpuset.sched_load_balance': _file(v.Flag(), hints=_CPUSET_HINTS),
    'cpuset.sched_relax_domain_level': _file(v.Integer(-1, 5), hints=_CPUSET_HINTS),
    'pids.max': _file(v.Integer(0, None, unlimited_text='max'), version=_BOTH),
    'blkio.weight': _file(v.Integer(10, 1000), counterpart=Counterpart('io.weight', _blkio_to_io, _io_to_blkio)),
    'blkio.leaf_weight': _file(v.Integer(10, 1000)),
    'blkio.weight_device': _file(v.KeyedLines()),
    'blkio.throttle.read_bps_device': _file(v.KeyedLines()),
    'blkio.throttle.write_bps_device': _file(v.KeyedLines()),
    'blkio.throttle.read_iops_device': _file(v.KeyedLines()),
    'blkio.throttle.write_iops_device': _file(v.KeyedLines()),
    'net_prio.ifpriomap': _file(v.KeyedLines()),
    'net_cls.classid': _file(v.HexOrInt()),
    'devices.list': _file(v.DeviceList(), EARLY, hints=_DEVICES_HINTS),
    'freezer.state': _file(v.FreezerState(), LAST, counterpart=Counterpart('cgroup.freeze', _frozen_to_freeze,
                                                                           _freeze_to_frozen)),
    'cgroup.clone_children': _file(v.Flag(), EARLY),
    'notify_on_release': _file(v.Flag()),
    # cgroup v2
    'memory.max': _file(v.MemorySize(unlimited_text='max'), version=_V2),
    'memory.high': _file(v.MemorySize(unlimited_text='max'), version=_V2),
    'memory.low': _file(v.MemorySize(unlimited_text='max'), version=_V2),
    'memory.min': _file(v.MemorySize(unlimited_text='max'), version=_V2),
    'memory.swap.max': _file(v.MemorySize(unlimited_text='max'), version=_V2),
    'memory.swap.high': _file(v.MemorySize(unlimited_text='max'), version=_V2),
    'memory.zswap.max': _file(v.MemorySize(unlimited_text='max'), version=_V2),
    'memory.zswap.writeback': _file(v.Kind(), version=_V2),
    'memory.oom.group': _file(v.Flag(), version=_V2),
    'cpu.max': _file(v.CpuMax(), PAIR, _V2),
    'cpu.max.burst': _file(v.Integer(0, None), PAIR, _V2),
    'cpu.weight': _file(v.Integer(1, 10000), version=_V2),
    'cpu.weight.nice': _file(v.Integer(-20, 19), version=_V2),
    'io.max': _file(v.IoMax(), version=_V2),
    'io.weight': _file(v.IoWeight(), version=_V2),
    'io.bfq.weight': _file(v.IoWeight(), version=_V2),
    'io.prio.class': _file(v.Kind(), version=_V2),
    'cpuset.cpus.partition': _file(v.Partition(), version=_V2, hints=_CPUSET_HINTS),
    'rdma.max': _file(v.Kind(), version=_V2),
    'misc.max': _file(v.Kind(), version=_V2),
    'cgroup.subtree_control': _file(v.ControllerSet(), version=_V2),
    'cgroup.type': _file(v.Kind(), EARLY, _V2),
    'cgroup.max.descendants': _file(v.Integer(0, None, unlimited_text='max'), version=_V2),
    'cgroup.max.depth': _file(v.Integer(0, None, unlimited_text='max'), version=_V2),
    'cgroup.freeze': _file(v.Flag(), LAST, _V2),
}


def mirror_counterparts(files):
    """Give each v2 file named as a v1 file's counterpart the mirror
    image: the v1 file, with the formulas swapped (in place, in files: FILES
    at import, and a test's copy with a record added). A pair's v2 file
    (cpu.max, memory.swap.max) names the pair's first file."""
    for name, record in list(files.items()):
        counterpart = record.counterpart
        if counterpart is None or counterpart.name is None or record.version != 1:
            continue
        other = files[counterpart.name]
        if other.counterpart is None:
            files[counterpart.name] = other._replace(
                counterpart=Counterpart(name, counterpart.from_other, counterpart.to_other))


mirror_counterparts(FILES)

# The write-order sets that phases.py walks (views of FILES).
HIERARCHICAL_SETS = frozenset(name for name, f in FILES.items() if f.order == SET)


def file_of(name):
    """The File record of a cgroup file. A file without a record of its own
    (a huge page size, an option this collection does not know) gets one
    from its name: hugetlb files are memory sizes of their page size
    (cgroup v2's end in .max), other *limit_in_bytes files memory sizes,
    and the rest text; its hints are those of its controller's files."""
    found = FILES.get(name)
    if found is not None:
        return found
    huge = _HUGETLB_RE.match(name)
    if huge:
        kind = v.MemorySize(granularity=int(huge.group(1)) * _HUGE_UNITS[huge.group(2)],
                            unlimited_text='max' if huge.group(3).endswith('max') else '-1')
    elif name.endswith('limit_in_bytes'):
        kind = v.MemorySize()
    else:
        kind = v.Kind()
    version = _V2 if name.startswith('hugetlb.') and name.endswith('.max') else 1
    return File(kind, NORMAL, None, version, _hints_by_name(name), _hugetlb_counterpart(name))


def _hugetlb_counterpart(name):
    """A huge page size's limit, the same bytes under the other version's
    name: hugetlb.<size>.limit_in_bytes (v1) is hugetlb.<size>.max (v2), and
    so for the rsvd limits."""
    if not name.startswith('hugetlb.'):
        return None
    if name.endswith('.limit_in_bytes'):
        return _same_as(name[:-len('limit_in_bytes')] + 'max')
    if name.endswith('.max'):
        return _same_as(name[:-len('max')] + 'limit_in_bytes')
    return None


def _hints_by_name(name):
    """The hints of a file without a record: those of its family's files."""
    hints = {}
    if name.startswith('memory.') and name.endswith('limit_in_bytes'):
        hints.update(_MEMORY_LIMIT_HINTS)
    if name.startswith('memory.memsw'):
        hints[errno.EINVAL] = _MEMSW_HINTS[errno.EINVAL]
    if '.memsw.' in name:
        hints[errno.ENOENT] = _MEMSW_HINTS[errno.ENOENT]
    for prefix, family in (('cpu.cfs_', _CFS_HINTS), ('cpuset.', _CPUSET_HINTS), ('devices.', _DEVICES_HINTS)):
        if name.startswith(prefix):
            hints.update(family)
    return hints


def kind_of(name):
    found = FILES.get(name)
    return found.kind if found is not None else file_of(name).kind


def controller_of(name):
    """The controller that owns a file, or None for core files."""
    if name in CORE_SETTINGS or name.startswith('cgroup.') or name == 'tasks':
        return None
    return name.split('.', 1)[0]


def refusal_reason(name):
    """Why a name can never be restored, or None if it may be."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        return 'it is not a cgroup file name'
    if name in NEVER_WRITTEN:
        return NEVER_WRITTEN[name]
    if name.startswith('cpuacct.') or _READ_ONLY_RE.search(name):
        return 'it is read-only (a statistic)'
    return None


def is_control_file_name(component):
    """True for names that look like cgroup files: never valid as cgroup names."""
    return component in NEVER_WRITTEN or component in CORE_SETTINGS or bool(
        re.match(r'^(cgroup|memory|cpu|cpuacct|cpuset|pids|blkio|io|devices|freezer|net_cls'
                 r'|net_prio|hugetlb|perf_event|rdma|misc)\.', component))


def writes_for(name, canonical, current=None):
    """(file, text) pairs that set `name` to a canonical value, one write() each.
    `current` matters only for files written as a change (subtree_control)."""
    kind = kind_of(name)
    if hasattr(kind, 'delta'):
        return [(name, text) for text in kind.delta(canonical, current)]
    key = (name, canonical.__class__, canonical)
    try:
        return list(_WRITES_SEEN[key])
    except (KeyError, TypeError):
        pass
    if hasattr(kind, 'writes'):
        writes = kind.writes(canonical)
    else:
        writes = [(name, text) for text in kind.render(canonical)]
    if len(_WRITES_SEEN) < 65536:
        try:
            _WRITES_SEEN[key] = tuple(writes)
        except TypeError:
            pass
    return writes


# (name, type, canonical value) -> writes, for kinds whose writes depend on
# the value alone: a tree sets the same few values again and again. Bounded,
# since it lives as long as the process.
_WRITES_SEEN = {}


# CRIU's default properties per controller (criu/cgroup-props.c), which
# cgroup_snapshot's "builtin" selection reads; CRIU_GLOBAL are saved for every
# controller, and of them cgroup.procs and tasks carry only their perms.
CRIU_BUILTIN = {
    'cpu': ('cpu.shares', 'cpu.cfs_period_us', 'cpu.cfs_quota_us', 'cpu.rt_period_us', 'cpu.rt_runtime_us'),
    'memory': ('memory.limit_in_bytes', 'memory.memsw.limit_in_bytes', 'memory.swappiness',
               'memory.soft_limit_in_bytes', 'memory.move_charge_at_immigrate', 'memory.oom_control',
               'memory.use_hierarchy', 'memory.kmem.limit_in_bytes', 'memory.kmem.tcp.limit_in_bytes'),
    'cpuset': ('cpuset.cpus', 'cpuset.mems', 'cpuset.memory_migrate', 'cpuset.cpu_exclusive',
               'cpuset.mem_exclusive', 'cpuset.mem_hardwall', 'cpuset.memory_spread_page',
               'cpuset.memory_spread_slab', 'cpuset.sched_load_balance', 'cpuset.sched_relax_domain_level'),
    'blkio': ('blkio.weight',),
    'freezer': (),
    'perf_event': (),
    'net_cls': ('net_cls.classid',),
    'net_prio': ('net_prio.ifpriomap',),
    'pids': ('pids.max',),
    'devices': ('devices.list',),
}
CRIU_GLOBAL = ('cgroup.clone_children', 'notify_on_release', 'cgroup.procs', 'tasks')
PERMS_ONLY = frozenset(['cgroup.procs', 'tasks', 'cgroup.threads'])


def kernel_file_mode(name):
    """The mode the kernel gives a control file in a new cgroup (most are
    0644; devices.list is read-only)."""
    return 0o444 if name == 'devices.list' else 0o644


# The cgroup v2 equivalents of CRIU's list, and v2's own core settings: those
# CRIU saves for v2 (its cgroup-v2 global properties, checkpoint-restore/criu#1968)
# plus cgroup.procs and cgroup.threads for their perms.
V2_BUILTIN = {
    'cpu': ('cpu.weight', 'cpu.max', 'cpu.idle'),
    'memory': ('memory.min', 'memory.low', 'memory.high', 'memory.max', 'memory.swap.max', 'memory.oom.group'),
    'cpuset': ('cpuset.cpus', 'cpuset.mems', 'cpuset.cpus.partition'),
    'io': ('io.weight', 'io.max'),
    'pids': ('pids.max',),
    'rdma': ('rdma.max',),
    'misc': ('misc.max',),
}
V2_GLOBAL = ('cgroup.subtree_control', 'cgroup.max.descendants', 'cgroup.max.depth', 'cgroup.freeze',
             'cgroup.type', 'cgroup.procs', 'cgroup.threads')


def builtin_properties(controller, version=1):
    """The files CRIU saves by default for a controller (v2: the equivalents)."""
    if version == 2:
        return V2_BUILTIN.get(controller, ())
    return CRIU_BUILTIN.get(controller, ())
