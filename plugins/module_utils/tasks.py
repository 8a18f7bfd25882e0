# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cgroup_tasks' core: which cgroups a process tree is in, as paths below
each hierarchy root of the caller's view, and whether they are the expected
ones. This is the checkpoint's question (which container tree to snapshot
before CRIU dumps the processes) and the restore's check (is every restored
process back in its own cgroup). Reads /proc only; never writes.

/proc/PID/cgroup names a cgroup from the root of the reader's cgroup
namespace; a view's hierarchy mount shows the subtree at its mountinfo root.
A path is made relative to the view by taking that root off."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import hierarchies as hz
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import spec as sp
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import Refusal, SpecError


def parse_proc_cgroup(text):
    """{(version, frozenset of controllers): path components} from the lines
    'ID:controllers:/path' of /proc/PID/cgroup; v2 is (2, frozenset())."""
    found = {}
    for line in text.splitlines():
        parts = line.split(':', 2)
        if len(parts) != 3:
            continue
        _hid, controllers, path = parts
        key = (1, frozenset(controllers.split(','))) if controllers else (2, frozenset())
        found[key] = tuple(c for c in path.split('/') if c)
    return found


def relative_to(path, root):
    """path below a mount's root ('/' or '/crtest-1/x'), or None outside it."""
    prefix = tuple(c for c in root.split('/') if c)
    if path[:len(prefix)] != prefix:
        return None
    return path[len(prefix):]


def place_in_view(proc_cgroups, hierarchies):
    """{hierarchy name: path in the view, or None outside it} of one process."""
    placed = {}
    for h in hierarchies:
        key = (2, frozenset()) if h.version == 2 else (1, frozenset(h.controllers))
        if key in proc_cgroups:
            placed[h.name] = relative_to(proc_cgroups[key], h.root)
    return placed


def tree_tops(tasks, depth):
    """({hierarchy: the tree's top-level cgroup}, notes): the first `depth`
    components of the deepest cgroup that holds every process of the tree
    (depth None: that cgroup itself). A hierarchy where the tree is not below
    the view's root (a container that is in no cgroup of its own there, as in
    name=systemd) has no top and is named in a note; a tree with no top in
    any hierarchy is refused: there is no container tree to take."""
    by_hierarchy = {}
    for task in tasks:
        for name, path in task['cgroups'].items():
            by_hierarchy.setdefault(name, []).append((task['pid'], path))
    tops = {}
    notes = []
    for name, entries in sorted(by_hierarchy.items()):
        outside = [pid for pid, path in entries if path is None]
        top = () if outside else tuple(os.path.commonprefix([path for _pid, path in entries]))
        if depth is not None:
            top = top[:depth]
        if top:
            tops[name] = sp.show_path(top)
        elif outside:
            notes.append('Hierarchy %s left out: process %d is in a cgroup outside this view.' % (name, outside[0]))
        else:
            notes.append('Hierarchy %s left out: the tree shares no cgroup below its root (%s).'
                         % (name, ', '.join('%d in %s' % (pid, sp.show_path(path)) for pid, path in entries[:4])))
    if not tops:
        raise Refusal('Failed to find the process tree\'s cgroups: %s Give the container\'s top-level cgroup '
                      'instead.' % ' '.join(notes))
    return tops, notes


def compare(tasks, expected, remap, hierarchies):
    """Messages, one per process of `expected` ({pid: {hierarchy: path}}, a
    previous run's tasks) that is missing or is not in its cgroup after the
    root remap."""
    by_pid = dict((task['pid'], task['cgroups']) for task in tasks)
    controllers = dict((h.name, sorted(h.controllers)) for h in hierarchies)
    problems = []
    for pid in sorted(expected, key=int):
        if int(pid) not in by_pid:
            problems.append('process %s is not running' % pid)
            continue
        now = by_pid[int(pid)]
        for name, path in sorted(expected[pid].items()):
            if name not in now:
                continue  # a hierarchy this host does not have: nothing to compare
            wanted = sp.remap_path(sp.split_path(path), controllers.get(name, ()), remap)
            if now[name] != wanted:
                problems.append('process %s is in %s:%s, not in %s:%s' % (
                    pid, name, 'outside this view' if now[name] is None else sp.show_path(now[name]),
                    name, sp.show_path(wanted)))
    return problems


def premount_entries(tops, hierarchies):
    """The hierarchies of the tree's top-level cgroup, one entry per hierarchy
    as the cgroup_premount role takes them: co-mounted controllers as one
    entry ('cpu,cpuacct'), named hierarchies as 'name=systemd', and on
    cgroup v2 the v2 hierarchy's controllers, each its own entry."""
    entries = []
    for h in hierarchies:
        if h.name not in tops:
            continue
        if h.version == 2:
            entries.extend(sorted(h.controllers))
        else:
            entries.append(','.join(sorted(h.controllers)))
    return sorted(set(entries))


# I/O -------------------------------------------------------------------------

def _read(path):
    with open(path) as handle:
        return handle.read()


def process_tree(pid):
    """pid and every descendant, parents first. From each task's children
    file; a process that exits meanwhile is left out."""
    order = [pid]
    i = 0
    while i < len(order):
        current = order[i]
        i += 1
        try:
            threads = os.listdir('/proc/%d/task' % current)
        except OSError:
            continue
        for tid in threads:
            try:
                children = _read('/proc/%d/task/%s/children' % (current, tid)).split()
            except (IOError, OSError):
                continue
            order.extend(int(child) for child in children if int(child) not in order)
    return order


def _comm(pid):
    try:
        return _read('/proc/%d/comm' % pid).strip()
    except (IOError, OSError):
        return ''


def read_tasks(pids, hierarchies):
    tasks = []
    for pid in pids:
        try:
            proc = parse_proc_cgroup(_read('/proc/%d/cgroup' % pid))
        except (IOError, OSError):
            continue  # exited meanwhile
        tasks.append(dict(pid=pid, comm=_comm(pid), cgroups=place_in_view(proc, hierarchies)))
    return tasks


def run(params, warn=None):
    """The module's result: the tree's tasks, its top-level cgroups and, with
    `expect`, the check; a Refusal names what does not match."""
    pid = params['pid']
    if pid is None or pid <= 0:
        raise SpecError('Invalid pid %r: give the process tree\'s root process id.' % (pid,))
    checking = params.get('expect') is not None
    if not os.path.isdir('/proc/%d' % pid):
        if checking and not params.get('fail_on_mismatch', True):
            # A restore's first question: are the processes back already? Not yet.
            return dict(changed=False, tasks=[], in_place=False,
                        mismatches=['process %d is not running' % pid])
        raise Refusal('Failed to read the cgroups of process %d: it is not running.' % pid)
    mountpoint = params.get('mountpoint') or '/sys/fs/cgroup'
    if not os.path.isdir(mountpoint):
        raise Refusal('Failed to read the cgroups of process %d: mountpoint %s does not exist.' % (pid, mountpoint))
    hierarchies = [h for h in hz.read_hierarchies(mountpoint)[1] if h.controllers or h.version == 2]
    pids = process_tree(pid) if params.get('tree', True) else [pid]
    tasks = read_tasks(pids, hierarchies)
    shown = [dict(task, cgroups=dict((name, None if path is None else sp.show_path(path))
                                     for name, path in task['cgroups'].items())) for task in tasks]
    result = dict(changed=False, tasks=shown)
    depth = params.get('depth', 1) or None  # 0: the deepest cgroup that holds the whole tree
    if not checking:
        result['tops'], notes = tree_tops(tasks, depth)
        for note in notes:
            (warn or (lambda message: None))(note)
        result['paths'] = sorted(set(result['tops'].values()))
        result['controllers'] = premount_entries(result['tops'], hierarchies)
        return result
    remap = sp.parse_remap(params.get('root'), params.get('roots'), params.get('root_from'))
    problems = compare(tasks, _expected(params['expect']), remap, hierarchies)
    result.update(in_place=not problems, mismatches=problems)
    if problems and params.get('fail_on_mismatch', True):
        raise Refusal('Failed to find the restored processes in their cgroups: %s.' % '; '.join(problems))
    return result


def _expected(value):
    """{pid text: {hierarchy: path}} from a list of tasks (what a previous run
    returned) or such a mapping."""
    if isinstance(value, list):
        try:
            return dict((str(task['pid']), dict((k, v) for k, v in task['cgroups'].items() if v is not None))
                        for task in value)
        except (KeyError, TypeError, AttributeError):
            raise SpecError('Invalid expect: give the tasks a previous cgroup_tasks run returned.')
    if isinstance(value, dict):
        return value
    raise SpecError('Invalid expect: give the tasks a previous cgroup_tasks run returned.')
