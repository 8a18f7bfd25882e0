# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Carry out a plan. The only code that writes cgroupfs.

Every step is journaled with the value seen before it; rollback replays the
journal backwards. Writes are read back and compared with what was asked."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import time

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import cgroupfs
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import policy
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import properties
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import ApplyError
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.report import Report
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.spec import show_path
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.undo_record import undo_target

_UNDO_RETRIES = (0.05, 0.1, 0.2, 0.4)
_KINDS = ('mount', 'mkdir', 'rmdir', 'write', 'chmod', 'chown')


class ReadBackMismatch(Exception):
    pass


class PartialWrite(Exception):
    """Some lines of a multi-line value were refused; the rest were written."""


def _file_hint(action, code):
    """The file's own hint for the kernel's refusal (properties.File.hints), or None."""
    return properties.file_of(action.prop).hints.get(code) if action.prop else None


def _hint(action, exc, context):
    code = getattr(exc, 'errno', None)
    text = _file_hint(action, code)
    if text:
        usage, parent = context.get('usage'), context.get('parent_value')
        return text.format(prop=action.prop, usage=' (memory.usage_in_bytes = %s)' % usage if usage else '',
                           parent=' (%s)' % parent if parent is not None else '')
    if context.get('gone'):
        return 'the cgroup disappeared after it was checked (removed by someone else); run again'
    if code == errno.ENOENT and action.kind == 'write':
        return 'the kernel has no such file here (controller option or accounting not enabled)'
    if code == errno.EEXIST:
        return 'it appeared after it was checked; run again'
    if code == errno.ENOENT and action.kind in ('mkdir', 'rmdir', 'chmod', 'chown'):
        return 'the cgroup or its parent disappeared after it was checked; run again'
    if code == errno.EROFS:
        return 'the hierarchy is mounted read-only'
    if code == errno.EBUSY and action.kind == 'mount':
        return 'the controller is already mounted with other controllers; mount them together'
    return None


def describe(action, exc, context=None):
    """'Failed to <verb> <hierarchy>:<cgroup> <what>: <reason>'."""
    where = '%s:%s' % (action.hierarchy, show_path(action.path))
    if action.kind == 'write':
        what = 'write %s %s = %r' % (where, action.prop, '; '.join(t for _f, t in action.writes))
    elif action.kind in ('chmod', 'chown'):
        what = '%s %s%s' % (action.kind, where, ' file ' + action.prop if action.prop else '')
    elif action.kind == 'mount':
        what = 'mount hierarchy %s at %s' % (action.after, action.spec_value)
    else:
        what = '%s %s' % (action.kind, where)
    if isinstance(exc, OSError) and exc.errno:
        reason = '%s (%s)' % (exc.strerror, errno.errorcode.get(exc.errno, exc.errno))
    elif isinstance(exc, (cgroupfs.NotCgroupFS, ReadBackMismatch, PartialWrite)):
        reason = str(exc)
    else:
        reason = 'unexpected %s: %s' % (type(exc).__name__, exc)
    hint = _hint(action, exc, context or {})
    return 'Failed to %s: %s%s' % (what, reason, '; ' + hint if hint else '')


class Applier:
    """Applies actions through handles {hierarchy name: cgroupfs.OpenHierarchy}."""

    # A seam for fault-injection tests: called before each step with
    # (step number from 1, action); whatever it raises counts as that step failing.
    fault_hook = None

    def __init__(self, handles, mountpoint, mode, missing_properties='fail', creator=None):
        """creator: the (uid, gid) the plan took a new cgroup's owner to be
        (Observed.creator), checked at each mkdir; None: nothing taken."""
        self.handles = handles
        self.creator = creator
        self.mountpoint = mountpoint
        self.mode = mode
        self.rules = policy.mode(mode)
        self.missing_properties = missing_properties
        self.steps = 0
        self.warnings = []
        self.journal = []
        self.created = set()
        self._report = Report()  # filled with what each step read back
        self.report = self._report.result
        # (hierarchy, path, file, writes) a fallback wrote ahead of its own
        # action: the journal already holds that file's old value
        self._written_ahead = set()
        # (hierarchy, path) whose mount or mkdir failed in opport mode: what
        # lies below is skipped, across calls of run().
        self.broken = []

    # -- running ---------------------------------------------------------
    def run(self, actions):
        """Apply in order. strict/bind: roll back and raise on the first failure.
        opport: go on with the rest; the caller raises if anything failed."""
        failed_writes = set()
        handlers = dict((kind, getattr(self, '_do_' + kind)) for kind in _KINDS)
        for action in actions:
            if failed_writes and action.kind == 'write' and \
                    (action.hierarchy, action.path, action.prop) in failed_writes:
                continue  # the second step (narrowing) of a write that already failed
            blocker = self._blocked_by(action, self.broken) if self.broken else None
            if blocker:
                self._fail_item(action, 'skipped: %s could not be created' % blocker)
                failed_writes.add((action.hierarchy, action.path, action.prop))  # one item per property
                continue
            try:
                self.steps += 1
                if self.fault_hook is not None:
                    self.fault_hook(self.steps, action)  # pylint: disable=not-callable
                handlers[action.kind](action)
            except Exception as exc:  # pylint: disable=broad-except
                # Whatever went wrong, what was done so far must be undone.
                skipped = self._skipped_missing_file(action, exc)
                if skipped:
                    self.warnings.append(skipped)
                    continue
                message = describe(action, exc, self._context(action, exc))
                if self.rules.rolls_back:
                    self.abort(message)
                self._fail_item(action, message)
                failed_writes.add((action.hierarchy, action.path, action.prop))
                if action.kind in ('mkdir', 'mount'):
                    self.broken.append((action.hierarchy, action.path))
        return self.report

    def abort(self, message):
        """Roll back everything done so far and raise ApplyError."""
        undone, errors = self.rollback()
        self.report['rolled_back'] = undone
        self.report['rollback_errors'] = errors
        if errors:
            message += ('. Rollback could not undo %d step(s): %s' % (len(errors), '; '.join(errors)))
        else:
            message += '. Rolled back %d step(s); the cgroups are as they were.' % len(undone)
        raise ApplyError(message, self.report)

    def _skipped_missing_file(self, action, exc):
        """The warning when a write found its file gone (ENOENT in a cgroup
        that exists) and missing_properties lets it be skipped, else None."""
        if action.kind != 'write' or getattr(exc, 'errno', None) != errno.ENOENT:
            return None
        skipped = policy.skip_missing_file(self.missing_properties, action.hierarchy, action.path, action.prop)
        if skipped is None:
            return None
        try:
            return skipped if self.handles[action.hierarchy].exists(action.path) else None
        except (OSError, cgroupfs.NotCgroupFS):
            return None

    def _context(self, action, exc):
        """Live values that make a kernel refusal understandable."""
        context = {}
        fs = self.handles.get(action.hierarchy)
        prop = action.prop or ''
        if fs is None or action.kind == 'mount':
            return context
        try:
            if getattr(exc, 'errno', None) == errno.ENOENT and action.kind != 'mkdir' and not fs.exists(action.path):
                context['gone'] = True
                return context
            if action.kind != 'write':
                return context
            # what the file's hint shows
            hint = _file_hint(action, getattr(exc, 'errno', None)) or ''
            if '{usage}' in hint:
                usage = fs.read(action.path, 'memory.usage_in_bytes')
                context['usage'] = usage.strip() if usage else None
            if '{parent}' in hint and action.path:
                parent = fs.read(action.path[:-1], prop)
                context['parent_value'] = parent.strip() if parent is not None else None
        except (OSError, cgroupfs.NotCgroupFS):
            pass
        return context

    @staticmethod
    def _blocked_by(action, broken):
        for h, path in broken:
            if action.hierarchy == h and action.path[:len(path)] == path:
                return '%s:%s' % (h, show_path(path))
        return None

    def _fail_item(self, action, message):
        self._report.failed(action, message)

    def _do(self, action):
        getattr(self, '_do_' + action.kind)(action)

    def _is_new(self, action):
        return (action.hierarchy, action.path) in self.created

    # -- actions ---------------------------------------------------------
    def _do_mount(self, action):
        name, target = action.hierarchy, action.spec_value
        made_dir = cgroupfs.prepare_mount_dir(self.mountpoint, name)
        try:
            cgroupfs.mount('cgroup', target, 'cgroup', action.after)
        except OSError:
            if made_dir:
                cgroupfs.remove_mount_dir(self.mountpoint, name)
            raise
        self.journal.append(('mount', name, target, made_dir))
        self._report.mounted(action)

    def _do_mkdir(self, action):
        fs = self.handles[action.hierarchy]
        st = fs.mkdir(action.path)
        self.created.add((action.hierarchy, action.path))
        self.journal.append(('mkdir', action.hierarchy, action.path))
        self._report.created(action)
        if self.creator is not None and (st.st_uid, st.st_gid) != self.creator:
            # The plan left out the chowns to this owner: stop and roll back.
            raise OSError(errno.EPERM, 'the kernel gave the new cgroup the owner %d:%d, not this process\'s %d:%d, '
                          'which the plan took it to have' % ((st.st_uid, st.st_gid) + self.creator))
        for name in action.after or ():
            value = (fs.read(action.path[:-1], name) or '').strip()
            fs.write(action.path, name, value or '\n')

    def _do_write(self, action):
        fs = self.handles[action.hierarchy]
        new = self._is_new(action)
        own_entry = len(self.journal)  # where this write's undo goes
        ahead = (action.hierarchy, action.path, action.prop, action.writes) in self._written_ahead
        if not new and action.before is not None and not ahead:
            self.journal.append(('write', action.hierarchy, action.path, action.prop, action.before, action.after))
        kind = properties.kind_of(action.prop)
        refused = []
        raw = None
        # The usual write is one line to the property's own file: written and
        # read back through one descriptor.
        one = len(action.writes) == 1 and action.writes[0][0] == action.prop
        for index, (name, text) in enumerate(action.writes):
            try:
                if one:
                    raw = fs.write_read(action.path, name, text, kind.one_line)
                else:
                    fs.write(action.path, name, text)
            except OSError as exc:
                if getattr(kind, 'independent_lines', False) and self.rules.goes_on:
                    # a mode that goes on after a failure (opport): one refused
                    # line (an interface or device the host lacks) must not
                    # keep the other lines from applying
                    refused.append((text, exc))
                    continue
                if index or not action.fallback or exc.errno != errno.EINVAL:
                    raise
                # cfs: the period was refused under the old quota; v2: the
                # burst above the old quota. Write the fallback (the quota,
                # cpu.max) first, then this property again.
                fb_prop, fb_writes, fb_before = action.fallback
                if not new and fb_before is not None:
                    # journaled before this write, as it is written before it:
                    # rollback undoes this write first, then the fallback (the
                    # old, lower quota under the new burst would be refused)
                    self.journal.insert(own_entry, ('write', action.hierarchy, action.path, fb_prop, fb_before, None))
                for fb_name, fb_text in fb_writes:
                    fs.write(action.path, fb_name, fb_text)
                self._written_ahead.add((action.hierarchy, action.path, fb_prop, tuple(fb_writes)))
                fs.write(action.path, name, text)
                raw = None
        if raw is None:
            raw = fs.read(action.path, action.prop)
        if raw is None:
            raise ReadBackMismatch('%s cannot be read back' % action.prop)
        current = kind.read(raw)
        wanted = action.after
        if refused:
            failed_lines = set(text for text, _exc in refused)
            wanted = tuple(item for item, line in zip(action.after, kind.render(action.after))
                           if line not in failed_lines)
            current = tuple(item for item in current if kind.render((item,))[0] not in failed_lines)
        if not kind.same(wanted, current):
            raise ReadBackMismatch('the kernel accepted the write but %s reads back %r'
                                   % (action.prop, kind.show(current)))
        if len(refused) < len(action.writes):
            self._report.wrote(action, kind.show(current))
        if refused:
            raise PartialWrite('%d of %d lines refused, the others applied: %s' % (
                len(refused), len(action.writes), '; '.join(
                    '%r: %s (%s)' % (text, exc.strerror, errno.errorcode.get(exc.errno, exc.errno))
                    for text, exc in refused)))

    def _do_chmod(self, action):
        fs = self.handles[action.hierarchy]
        journaled = not self._is_new(action) and action.before is not None
        if journaled:
            self.journal.append(('chmod', action.hierarchy, action.path, action.prop, action.before, None))
        fs.chmod(action.path, action.prop, action.after)
        mode = fs.stat(action.path, action.prop)[0]
        if journaled:
            # the mode read back: cgroup_undo puts the old one back only while the file still has it
            self.journal[-1] = self.journal[-1][:5] + (mode,)
        self._report.chmod(action, mode)

    def _do_chown(self, action):
        fs = self.handles[action.hierarchy]
        journaled = not self._is_new(action) and action.before is not None
        if journaled:
            self.journal.append(('chown', action.hierarchy, action.path, action.prop, action.before, None))
        fs.chown(action.path, action.prop, *action.after)
        _mode, uid, gid = fs.stat(action.path, action.prop)
        if journaled:
            self.journal[-1] = self.journal[-1][:5] + ((uid, gid),)
        self._report.chown(action, (uid, gid))

    def _do_rmdir(self, action):
        fs = self.handles[action.hierarchy]
        perms = fs.stat(action.path)
        fs.rmdir(action.path)
        self.journal.append(('rmdir', action.hierarchy, action.path, perms))
        self._report.removed(action)

    # -- rollback --------------------------------------------------------
    def rollback(self):
        """Undo the journal backwards. Returns (undone, errors); errors are
        reported, never hidden."""
        undone, errors = [], []
        while self.journal:
            entry = self.journal.pop()
            if entry[0] == 'write':
                # As in the undo record: of a keyed file, put back the keys
                # the run wrote, and clear those the file did not show.
                entry = entry[:4] + (undo_target(entry[3], entry[4], entry[5]), entry[5])
            try:
                self.undo_step(entry)
                undone.append(self._show_entry(entry))
            except Exception as exc:  # pylint: disable=broad-except
                # Go on undoing the rest; every failure is reported.
                errors.append('%s: %s' % (self._show_entry(entry), exc))
        return undone, errors

    def undo_step(self, entry):
        """Undo one journal entry, unconditionally: the one place that knows
        how. rollback calls it within the run; cgroup_undo (undo.py) calls it
        later, once its checks found that the step is still the run's.
        A write entry is (write, hierarchy, path, property, before, now):
        `now` is what the file holds (the delta of keyed files is taken from it)."""
        getattr(self, '_undo_' + entry[0])(*entry[1:])

    @staticmethod
    def _show_entry(entry):
        if entry[0] == 'mount':
            return 'mount %s' % entry[2]
        text = '%s %s:%s' % (entry[0], entry[1], show_path(entry[2]))
        if entry[0] == 'write':
            text += ' ' + entry[3]
        return text

    def _undo_mount(self, name, target, made_dir):
        handle = self.handles.pop(name, None)
        if handle is not None:
            handle.close()
        cgroupfs.umount(target)
        if made_dir:
            cgroupfs.remove_mount_dir(self.mountpoint, name)

    def _undo_mkdir(self, hierarchy, path):
        # EBUSY: a task or a child appeared; give it a moment.
        _retry(lambda: self.handles[hierarchy].rmdir(path), (errno.EBUSY,), 'rmdir',
               'the cgroup has tasks or child cgroups; move them out and remove it')

    def _undo_write(self, hierarchy, path, prop, before, after):
        fs = self.handles[hierarchy]
        for name, text in properties.writes_for(prop, before, after):
            # The kernel takes removed child cgroups offline asynchronously;
            # until then it may refuse to widen a parent again (devices.allow
            # with EINVAL, cpuset with EBUSY), so an undo write is retried too.
            _retry(lambda name=name, text=text: fs.write(path, name, text), (errno.EINVAL, errno.EBUSY),
                   'writing %s' % name, 'put the old value %r back by hand' % text)

    def _undo_chmod(self, hierarchy, path, name, mode, _after=None):
        self.handles[hierarchy].chmod(path, name, mode)

    def _undo_chown(self, hierarchy, path, name, owner, _after=None):
        self.handles[hierarchy].chown(path, name, owner[0], owner[1])

    def _undo_rmdir(self, hierarchy, path, perms):
        fs = self.handles[hierarchy]
        fs.mkdir(path, perms[0])
        fs.chmod(path, None, perms[0])
        fs.chown(path, None, perms[1], perms[2])


def _retry(call, codes, what, advice):
    """Call, retrying with a short backoff while the kernel refuses with one
    of codes; the final refusal says that it was retried, and for how long."""
    start = time.time()
    for attempt, delay in enumerate(_UNDO_RETRIES + (None,), 1):
        try:
            return call()
        except OSError as exc:
            if exc.errno not in codes:
                raise
            if delay is None:
                raise OSError(exc.errno, '%s refused with %s after %d attempts over %.2f s: %s'
                              % (what, errno.errorcode.get(exc.errno, exc.errno), attempt, time.time() - start,
                                 advice))
            time.sleep(delay)
    return None
