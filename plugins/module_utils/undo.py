# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cgroup_undo's core: replay a cgroup_restore run's undo record backwards,
later and from another task, under the host lock.

Every step is checked against the kernel first, and undone only while it is
still the run's: a value only while the file holds what the run wrote, a
created cgroup only while it has no tasks and no cgroup the run did not
create, a mount only while nothing the run did not create is below it. What
is left is reported (`kept`) and warned about, never forced: no process is
ever moved or killed. The undoing itself is the Applier's (apply.py), the
same code that rolls back a failed run."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import gc
import os

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import cgroupfs
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import hierarchies as hz
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import properties
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import undo_record
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.apply import Applier
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.report import show_mode
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import ApplyError, Refusal
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.lock import HostLock
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.spec import show_path

# What to do with one step, decided from the kernel's current state.
UNDO = 'undo'          # still the run's: put it back
DONE = 'done'          # already as before the run (undone earlier, or by someone)
FOREIGN = 'foreign'    # changed by someone else since the run: leave it
UNKNOWN = 'unknown'    # the record does not say what the run wrote: leave it


def decide_value(kind, before, after, current, original, page_size=4096):
    """A value step: before/after the run's step, current what the file holds,
    original what the file held before the run's first write of it (a file
    written twice, widened then narrowed, has two steps)."""
    if kind.same(before, current, page_size):
        return DONE
    if after is None:
        return UNKNOWN
    if kind.same(after, current, page_size):
        return UNDO
    if original is not None and kind.same(original, current, page_size):
        return DONE  # an earlier undo got past this step already
    return FOREIGN


def decide_equal(before, after, current, original):
    """The same for modes and owners, compared exactly."""
    if current == before:
        return DONE
    if after is None:
        return UNKNOWN
    if current == after:
        return UNDO
    if current == original:
        return DONE
    return FOREIGN


def decide_rmdir(children, tasks):
    """A cgroup the run created: its remaining child cgroups (the names
    that this undo does not remove) and its task ids. A reason to keep it, or None."""
    if tasks:
        shown = ', '.join(tasks[:5]) + (' and %d more' % (len(tasks) - 5) if len(tasks) > 5 else '')
        return 'it has tasks (%s); cgroup_undo never moves or kills processes' % shown
    if children:
        shown = ', '.join(children[:5]) + (' and %d more' % (len(children) - 5) if len(children) > 5 else '')
        return 'it holds cgroups that this undo does not remove: %s' % shown
    return None


class Replay:
    """Replays a Record backwards through handles {hierarchy: cgroupfs.OpenHierarchy}."""

    def __init__(self, record, handles, mounted, check_mode, page_size):
        self.record = record
        self.handles = handles
        # {hierarchy: hz.Hierarchy} mounted under the mountpoint now
        self.mounted = mounted
        self.check_mode = check_mode
        self.page_size = page_size
        self.applier = Applier(handles, record.mountpoint, record.mode)
        self.undone, self.kept, self.errors = [], [], []
        self.notes = []          # warnings besides the kept steps
        self.diff_before, self.diff_after = [], []
        self.removed = set()     # (hierarchy, path) removed (or, in check mode, that would be)
        self.unmounted = set()
        self.settled = set()     # (kind, hierarchy, path, name) whose earlier steps are left alone
        self.kept_cgroups = set()
        self.overlay = {}        # check mode: what this undo would have written
        self.original = _originals(record.steps)

    def run(self):
        for step in reversed(self.record.steps):
            try:
                getattr(self, '_' + step.kind)(step)
            except Exception as exc:  # pylint: disable=broad-except
                # One step failing must not keep the others from being undone; each is reported.
                self.errors.append('Failed to undo %s: %s' % (_show(step), _reason(exc)))
        return dict(undone=self.undone, kept=self.kept, errors=self.errors)

    # -- helpers -------------------------------------------------------------
    def _fs(self, step):
        return self.handles.get(step.hierarchy)

    def _keep(self, step, reason):
        entry = dict(step=step.kind, hierarchy=step.hierarchy, reason=reason)
        if step.kind == 'mount':
            entry['path'] = step.path
        else:
            entry['cgroup'] = show_path(step.path)
        if step.kind == 'write':
            entry['property'] = step.name
        elif step.kind in ('chmod', 'chown'):
            entry['file'] = step.name
        self.kept.append(entry)

    def _done(self, step, entry, before_line=None, after_line=None):
        entry = dict(dict(step=step.kind, hierarchy=step.hierarchy), **entry)
        self.undone.append(entry)
        if before_line is not None:
            self.diff_before.append(before_line)
        if after_line is not None:
            self.diff_after.append(after_line)

    def _apply(self, entry):
        if not self.check_mode:
            self.applier.undo_step(entry)

    def _gone(self, step):
        """The step's cgroup is not there (or its hierarchy is not mounted): a reason, or None."""
        fs = self._fs(step)
        if fs is None:
            return 'hierarchy %s is not mounted under %s' % (step.hierarchy, self.record.mountpoint)
        if (step.hierarchy, step.path) in self.removed or fs.lookup(step.path) is None:
            return 'the cgroup no longer exists'
        return None

    # -- steps, newest first ---------------------------------------------------
    def _write(self, step):
        key = ('write', step.hierarchy, step.path, step.name)
        if key in self.settled:
            return
        where = '%s:%s %s' % (step.hierarchy, show_path(step.path), step.name)
        gone = self._gone(step)
        if gone:
            self.settled.add(key)
            return self._keep(step, gone)
        kind = properties.kind_of(step.name)
        if key in self.overlay:
            current = self.overlay[key]
        else:
            raw = self._fs(step).read(step.path, step.name)
            if raw is None:
                self.settled.add(key)
                return self._keep(step, 'the kernel has no such file here any more')
            current = kind.read(raw)
        decision = decide_value(kind, step.before, step.after, current, self.original.get(key), self.page_size)
        if decision == DONE:
            if self.original.get(key) is not None and kind.same(self.original[key], current, self.page_size):
                self.settled.add(key)
            return None
        if decision != UNDO:
            self.settled.add(key)
            return self._keep(step, _why_kept(decision, kind.show(current),
                                              None if step.after is None else kind.show(step.after)))
        if step.name == 'cgroup.subtree_control' and self._kept_below(step):
            self.settled.add(key)
            return self._keep(step, 'a cgroup below it that the run created was kept, and still uses its controllers')
        self._apply(('write', step.hierarchy, step.path, step.name, step.before, current))
        if self.check_mode:
            self.overlay[key] = step.before
        shown_now, shown_old = kind.show(current), kind.show(step.before)
        self._done(step, dict(cgroup=show_path(step.path), property=step.name, before=shown_now, after=shown_old),
                   '%s = %s' % (where, shown_now.replace('\n', ', ')),
                   '%s = %s' % (where, shown_old.replace('\n', ', ')))
        return None

    def _kept_below(self, step):
        return any(h == step.hierarchy and len(p) > len(step.path) and p[:len(step.path)] == step.path
                   for h, p in self.kept_cgroups)

    def _perm_step(self, step, current, show):
        key = (step.kind, step.hierarchy, step.path, step.name)
        if key in self.settled:
            return
        decision = decide_equal(step.before, step.after, current, self.original.get(key))
        if decision == DONE:
            if current == self.original.get(key):
                self.settled.add(key)
            return
        if decision != UNDO:
            self.settled.add(key)
            self._keep(step, _why_kept(decision, show(current), show(step.after)))
            return
        self._apply((step.kind, step.hierarchy, step.path, step.name, step.before, step.after))
        if self.check_mode:
            self.overlay[key] = step.before
        where = '%s:%s %s%s' % (step.hierarchy, show_path(step.path), step.name + ' ' if step.name else '',
                                'mode' if step.kind == 'chmod' else 'owner')
        self._done(step, dict(cgroup=show_path(step.path), file=step.name, before=show(current),
                              after=show(step.before)),
                   '%s = %s' % (where, show(current)), '%s = %s' % (where, show(step.before)))

    def _current_perms(self, step):
        key = (step.kind, step.hierarchy, step.path, step.name)
        if key in self.overlay:
            return self.overlay[key]
        perms = self._fs(step).stat(step.path, step.name)
        if perms is None:
            return None
        return perms[0] if step.kind == 'chmod' else (perms[1], perms[2])

    def _chmod(self, step):
        self._perms(step, show_mode)

    def _chown(self, step):
        self._perms(step, lambda owner: None if owner is None else '%d:%d' % tuple(owner))

    def _perms(self, step, show):
        key = (step.kind, step.hierarchy, step.path, step.name)
        if key in self.settled:
            return
        gone = self._gone(step)
        current = None if gone else self._current_perms(step)
        if gone or current is None:
            self.settled.add(key)
            self._keep(step, gone or 'the file %s no longer exists' % step.name)
            return
        self._perm_step(step, current, show)

    def _mkdir(self, step):
        fs = self._fs(step)
        if fs is None:
            self.kept_cgroups.add((step.hierarchy, step.path))
            return self._keep(step, 'hierarchy %s is not mounted under %s' % (step.hierarchy, self.record.mountpoint))
        if (step.hierarchy, step.path) in self.removed or fs.lookup(step.path) is None:
            return None  # gone already
        children = [name for name in fs.subdirs(step.path) if (step.hierarchy, step.path + (name,)) not in self.removed]
        procs = fs.read(step.path, 'cgroup.procs') or ''
        reason = decide_rmdir(children, procs.split())
        if reason:
            self.kept_cgroups.add((step.hierarchy, step.path))
            return self._keep(step, reason)
        self._apply(('mkdir', step.hierarchy, step.path))
        self.removed.add((step.hierarchy, step.path))
        head = '%s:%s' % (step.hierarchy, show_path(step.path))
        self._done(step, dict(cgroup=show_path(step.path)), head)
        return None

    def _rmdir(self, step):
        fs = self._fs(step)
        if fs is None:
            return self._keep(step, 'hierarchy %s is not mounted under %s' % (step.hierarchy, self.record.mountpoint))
        if fs.lookup(step.path) is not None:
            return None  # there again
        if fs.lookup(step.path[:-1]) is None and (step.hierarchy, step.path[:-1]) not in self.removed:
            return self._keep(step, 'its parent no longer exists')
        self._apply(('rmdir', step.hierarchy, step.path, step.before))
        head = '%s:%s' % (step.hierarchy, show_path(step.path))
        self._done(step, dict(cgroup=show_path(step.path), mode=show_mode(step.before[0]),
                              owner=[step.before[1], step.before[2]]), None, head)
        self.notes.append(
            'Recreated %s, which the restore had pruned, with its owner and mode; its settings were not recorded '
            'and are the kernel\'s defaults.' % head)
        return None

    def _mount(self, step):
        now = self.mounted.get(step.hierarchy)
        if now is None or now.mount_point != step.path or step.hierarchy in self.unmounted:
            return None  # not mounted there any more
        wanted = frozenset(o for o in step.name.split(',') if o not in ('none', ''))
        if now.version != 1 or now.controllers != wanted:
            return self._keep(step, 'another hierarchy (%s) is mounted there now'
                              % (','.join(sorted(now.controllers)) or 'cgroup2'))
        fs = self._fs(step)
        children = [name for name in fs.subdirs(()) if (step.hierarchy, (name,)) not in self.removed]
        if children:
            return self._keep(step, 'it holds cgroups that this undo does not remove: %s'
                              % ', '.join(children[:5] + (['and %d more' % (len(children) - 5)]
                                                          if len(children) > 5 else [])))
        self._apply(('mount', step.hierarchy, step.path, step.made_dir))
        self.unmounted.add(step.hierarchy)
        self._done(step, dict(path=step.path), '%s: mounted at %s, options %s' % (step.hierarchy, step.path, step.name))
        return None


def _originals(steps):
    """{(kind, hierarchy, path, name): the value before the run's first step on it}."""
    found = {}
    for step in steps:
        if step.kind in ('write', 'chmod', 'chown'):
            found.setdefault((step.kind, step.hierarchy, step.path, step.name), step.before)
    return found


def _why_kept(decision, now, wrote):
    if decision == UNKNOWN:
        return 'the record does not say what the restore wrote; it holds %s now' % now
    return 'it was changed after the restore (it holds %s, the restore wrote %s)' % (now, wrote)


def _show(step):
    if step.kind == 'mount':
        return 'mount %s at %s' % (step.hierarchy, step.path)
    text = '%s %s:%s' % (step.kind, step.hierarchy, show_path(step.path))
    if step.kind == 'write':
        text += ' ' + step.name
    elif step.kind in ('chmod', 'chown') and step.name:
        text += ' file ' + step.name
    return text


def _reason(exc):
    if isinstance(exc, OSError) and exc.errno:
        return '%s (%s)' % (exc.strerror, errno.errorcode.get(exc.errno, exc.errno))
    if isinstance(exc, cgroupfs.NotCgroupFS):
        return str(exc)
    return 'unexpected %s: %s' % (type(exc).__name__, exc)


def _warning(entry):
    head = entry.get('path') if entry['step'] == 'mount' else '%s:%s' % (entry['hierarchy'], entry['cgroup'])
    what = {'mount': 'the mount of %s at' % entry['hierarchy'], 'mkdir': 'cgroup', 'rmdir': 'cgroup'}.get(
        entry['step'], '')
    if entry['step'] == 'write':
        head += ' property ' + entry['property']
    elif entry['step'] in ('chmod', 'chown'):
        head += (' file %s' % entry['file'] if entry['file'] else '') + (
            ' mode' if entry['step'] == 'chmod' else ' owner')
    return 'Kept %s%s: %s.' % (what + ' ' if what else '', head, entry['reason'])


def _open(record):
    """{name: hz.Hierarchy} mounted under the record's mountpoint, and safe handles to
    those the record names."""
    if not os.path.isdir(record.mountpoint):
        raise Refusal('Failed to undo: mountpoint %s does not exist or is not a directory. Nothing was changed.'
                      % record.mountpoint)
    _kernel, found = hz.read_hierarchies(record.mountpoint)
    mounted = dict((h.name, h) for h in found)
    handles = {}
    try:
        for name in sorted(set(step.hierarchy for step in record.steps)):
            h = mounted.get(name)
            if h is None:
                continue
            try:
                handles[name] = cgroupfs.OpenHierarchy(h.mount_point, h.version)
            except (OSError, cgroupfs.NotCgroupFS) as exc:
                raise Refusal('Failed to open hierarchy %s at %s: %s. Nothing was changed.'
                              % (name, h.mount_point, _reason(exc) if isinstance(exc, OSError) else exc))
    except Exception:
        for handle in handles.values():
            handle.close()
        raise
    return mounted, handles


def run(params, check_mode=False, want_diff=False, warn=None):
    """The module's result, or a CgroupError (ApplyError carries the report)."""
    warn = warn or (lambda message: None)
    record = undo_record.read_record(params.get('undo'))
    paused = gc.isenabled()
    gc.disable()
    try:
        with HostLock(params.get('lock_timeout') or 60) as lock:
            if lock.waited >= 0.05:
                warn('Waited %.1f s for the host lock %s: a cgroup restore or undo was running.'
                     % (lock.waited, lock.path))
            mounted, handles = _open(record)
            replay = Replay(record, handles, mounted, check_mode, os.sysconf('SC_PAGE_SIZE'))
            try:
                report = replay.run()
            finally:
                for handle in handles.values():
                    handle.close()
    finally:
        if paused:
            gc.enable()
    for entry in report['kept']:
        warn(_warning(entry))
    for message in replay.notes:
        warn(message)
    report.update(changed=bool(report['undone']), mode=record.mode, lock_waited=round(lock.waited, 3))
    if want_diff:
        report['diff'] = dict(before=''.join(sorted(line + '\n' for line in replay.diff_before)),
                              after=''.join(sorted(line + '\n' for line in replay.diff_after)))
    errors = report.pop('errors')
    if errors:
        report['undo_errors'] = errors
        raise ApplyError('Failed to undo %d step(s) of the restore; the rest was undone as reported: %s'
                         % (len(errors), '; '.join(errors)), report)
    return report
