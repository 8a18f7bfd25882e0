# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cgroup_mount's core: idempotent mounts of cgroup v1 hierarchies, cgroup2,
a tmpfs for a container's cgroup view, and bind mounts of cgroup directories
into that view.

Every decision is made from /proc/self/mountinfo: what is visibly mounted at
the path (the top of a stack of mounts), and, for a bind, the (device, root)
pair of the source directory. decide() is pure; run() does the I/O.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import stat
from collections import namedtuple

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import cgroupfs
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import hierarchies as hz
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import CgroupError, Refusal

# fstype: cgroup, cgroup2, tmpfs or bind. controllers: a sorted tuple (cgroup).
# src: the directory to bind (bind). options: extra mount options (tmpfs, cgroup2).
Request = namedtuple('Request', 'path state fstype controllers src options recursive')
# action: None, 'mount' or 'umount'; unmount: mount points to unmount, in order.
Decision = namedtuple('Decision', 'action current unmount')

TMPFS_SOURCE = 'cgroup-view'


def make_request(params):
    fstype = params['fstype']
    controllers = tuple(sorted(set(c.strip() for c in (params.get('controllers') or []) if c.strip())))
    path = os.path.realpath(params['path'])
    src = params.get('src')
    if fstype == 'cgroup' and not controllers:
        raise Refusal('Failed to %s a cgroup v1 hierarchy at %s: controllers is empty.'
                      % (_verb(params['state']), path))
    if fstype != 'cgroup' and controllers:
        raise Refusal('Invalid options: controllers is only for fstype cgroup, not %s.' % fstype)
    if fstype == 'bind':
        src = os.path.realpath(src)
    elif src:
        raise Refusal('Invalid options: src is only for fstype bind, not %s.' % fstype)
    if params.get('options') and fstype not in ('tmpfs', 'cgroup2'):
        raise Refusal('Invalid options: options is only for fstype tmpfs or cgroup2, not %s.' % fstype)
    if path == '/':
        raise Refusal('Failed to %s at /: refusing to work on the root directory.' % _verb(params['state']))
    return Request(path=path, state=params['state'], fstype=fstype, controllers=controllers, src=src,
                   options=_options(params.get('options'), fstype),
                   recursive=bool(params.get('recursive')))


def _options(given, fstype):
    """The mount options as given (an empty text is none at all); left out,
    a tmpfs view gets mode=755."""
    if given is not None:
        return given
    return 'mode=755' if fstype == 'tmpfs' else ''


def _verb(state):
    return 'unmount' if state == 'unmounted' else 'mount'


# -- reading mountinfo (pure) -------------------------------------------------

visible = hz.visible  # one rule for hidden mounts, shared with discover()


def containing(seen, path):
    """The visible mount that holds `path` (the longest mount point above it)."""
    best = None
    for point, mount in seen.items():
        if path == point or point == '/' or path.startswith(point.rstrip('/') + '/'):
            if best is None or len(point) > len(best.mount_point):
                best = mount
    return best


def source_identity(seen, src):
    """(device, root inside its filesystem) of a directory: what a bind mount
    of it shows in mountinfo."""
    mount = containing(seen, src)
    if mount is None:
        return None
    rel = os.path.relpath(src, mount.mount_point)
    root = os.path.normpath(os.path.join(mount.root, rel)) if rel != '.' else mount.root
    return mount.dev, root


def describe(mount, known=()):
    """One readable line for a mountinfo entry."""
    if mount.fstype == 'cgroup':
        what = 'cgroup v1 hierarchy %s' % ','.join(sorted(hz.v1_controllers(mount, known))
                                                   or [o for o in mount.super_options if o not in ('rw', 'ro')])
    elif mount.fstype == 'cgroup2':
        what = 'cgroup2'
    else:
        what = mount.fstype
    if mount.root != '/':
        what += ' (bind of %s)' % mount.root
    return '%s on %s' % (what, mount.mount_point)


def describe_request(req):
    if req.fstype == 'cgroup':
        return 'cgroup v1 hierarchy %s on %s' % (','.join(req.controllers), req.path)
    if req.fstype == 'bind':
        return 'bind of %s on %s' % (req.src, req.path)
    return '%s on %s' % (req.fstype, req.path)


def matches(req, mount, known, src_id):
    if req.fstype == 'cgroup':
        return mount.fstype == 'cgroup' and hz.v1_controllers(mount, known) == frozenset(req.controllers)
    if req.fstype == 'bind':
        return src_id is not None and (mount.dev, mount.root) == src_id
    return mount.fstype == req.fstype


def comount_conflict(req, seen, kernel_ids):
    """The message when a wanted controller is bound with others, naming the
    existing mount; None when the kernel would accept this set."""
    wanted = frozenset(req.controllers)
    for point in sorted(seen):
        mount = seen[point]
        if mount.fstype != 'cgroup':
            continue
        have = hz.v1_controllers(mount, kernel_ids)
        shared = have & wanted
        if shared and have != wanted:
            return ('Failed to mount cgroup v1 hierarchy %s at %s: %s is already mounted at %s in hierarchy %s. '
                    'The kernel mounts an existing hierarchy only with exactly its controllers: use controllers %s.'
                    % (','.join(req.controllers), req.path, ','.join(sorted(shared)), mount.mount_point,
                       ','.join(sorted(have)), '[%s]' % ', '.join(sorted(have))))
    for controller in req.controllers:
        if controller.startswith('name=') or controller not in kernel_ids:
            continue
        group = frozenset(hz.comount_group(controller, kernel_ids))
        if kernel_ids.get(controller) and group != frozenset(c for c in wanted if not c.startswith('name=')):
            return ('Failed to mount cgroup v1 hierarchy %s at %s: the kernel already has %s in hierarchy %d '
                    'together with %s (see /proc/cgroups; it is mounted in another mount namespace). '
                    'Use controllers [%s].'
                    % (','.join(req.controllers), req.path, controller, kernel_ids[controller],
                       ','.join(sorted(group - set([controller]))) or 'no other controller',
                       ', '.join(sorted(group))))
    unknown = [c for c in req.controllers if not c.startswith('name=') and c not in kernel_ids]
    if unknown:
        return ('Failed to mount cgroup v1 hierarchy %s at %s: controller %s is not available in this kernel '
                '(see /proc/cgroups).' % (','.join(req.controllers), req.path, ', '.join(unknown)))
    return None


def decide(req, mounts, kernel_ids, src_id=None):
    """What to do, from mountinfo alone. Raises Refusal for a conflict."""
    seen = visible(mounts)
    current = seen.get(req.path)
    if req.state == 'mounted':
        if current is not None:
            if matches(req, current, kernel_ids, src_id):
                return Decision(None, current, ())
            raise Refusal('Failed to mount %s: %s is already mounted there. Unmount it first.'
                          % (describe_request(req), describe(current, kernel_ids)))
        if req.fstype == 'cgroup':
            conflict = comount_conflict(req, seen, kernel_ids)
            if conflict:
                raise Refusal(conflict)
        return Decision('mount', None, ())
    if current is None:
        return Decision(None, None, ())
    if not matches(req, current, kernel_ids, src_id):
        raise Refusal('Failed to unmount %s: %s is mounted there instead; nothing was unmounted.'
                      % (describe_request(req), describe(current, kernel_ids)))
    below = []
    if req.recursive:
        # Deepest first, and among equals the latest mount first.
        order = dict((m.mount_point, i) for i, m in enumerate(mounts))
        below = sorted((p for p in seen if p.startswith(req.path + '/')),
                       key=lambda p: (-p.count('/'), -order[p]))
    return Decision('umount', current, tuple(below) + (req.path,))


# -- acting ----------------------------------------------------------------------

def _errname(exc):
    return errno.errorcode.get(exc.errno, str(exc.errno))


def _check_src(req, check_mode):
    """A bind source must be a directory on a cgroup filesystem. In check mode
    it may be missing: an earlier task would have created it."""
    try:
        fd = os.open(req.src, os.O_RDONLY | os.O_DIRECTORY | getattr(os, 'O_CLOEXEC', 0))
    except OSError as exc:
        if check_mode and exc.errno == errno.ENOENT:
            return
        raise Refusal('Failed to bind %s onto %s: the source cannot be opened: %s (%s).'
                      % (req.src, req.path, exc.strerror, _errname(exc)))
    try:
        magic = cgroupfs.fs_magic(fd)
    finally:
        os.close(fd)
    if magic not in (cgroupfs.CGROUP_SUPER_MAGIC, cgroupfs.CGROUP2_SUPER_MAGIC):
        raise Refusal('Failed to bind %s onto %s: the source is not a cgroup directory (statfs magic 0x%x).'
                      % (req.src, req.path, magic))


def missing_dirs(path):
    """The directories to create for `path`, top-down. Refuses to create one
    inside a cgroup filesystem, where a mkdir would create a cgroup."""
    todo = []
    probe = path
    while not os.path.lexists(probe):
        todo.append(probe)
        probe = os.path.dirname(probe)
    st = os.lstat(probe)
    if not stat.S_ISDIR(st.st_mode):
        raise Refusal('Failed to prepare the mount point %s: %s exists and is not a directory.' % (path, probe))
    if todo:
        fd = os.open(probe, os.O_RDONLY | os.O_DIRECTORY | getattr(os, 'O_CLOEXEC', 0))
        try:
            magic = cgroupfs.fs_magic(fd)
        finally:
            os.close(fd)
        if magic in (cgroupfs.CGROUP_SUPER_MAGIC, cgroupfs.CGROUP2_SUPER_MAGIC):
            raise Refusal('Failed to prepare the mount point %s: %s is on a cgroup filesystem, where a new '
                          'directory would be a new cgroup.' % (path, probe))
    return list(reversed(todo))


def _mount(req):
    if req.fstype == 'cgroup':
        cgroupfs.mount('cgroup', req.path, 'cgroup', hz.mount_options(list(req.controllers)))
    elif req.fstype == 'cgroup2':
        cgroupfs.mount('cgroup2', req.path, 'cgroup2', req.options)
    elif req.fstype == 'tmpfs':
        cgroupfs.mount(TMPFS_SOURCE, req.path, 'tmpfs', req.options)
    else:
        cgroupfs.bind(req.src, req.path)


def _mount_error(req, exc):
    reason = '%s (%s)' % (exc.strerror, _errname(exc))
    if req.fstype == 'cgroup' and exc.errno == errno.EBUSY:
        kernel_ids = hz.read_kernel_controllers()
        conflict = comount_conflict(req, visible(hz.read_mounts()), kernel_ids)
        if conflict:
            return conflict
        reason += ': the kernel binds one of these controllers in a hierarchy with a different set of ' \
                  'controllers or options (see /proc/cgroups)'
    return 'Failed to mount %s: %s.' % (describe_request(req), reason)


def mount_dict(mount, known):
    if mount is None:
        return None
    return dict(mount_point=mount.mount_point, fstype=mount.fstype, root=mount.root, dev=mount.dev,
                controllers=sorted(hz.v1_controllers(mount, known)) if mount.fstype == 'cgroup' else [],
                read_only=mount.read_only)


def run(params, check_mode=False, want_diff=False):
    req = make_request(params)
    kernel_ids = hz.read_kernel_controllers()
    mounts = hz.read_mounts()
    seen = visible(mounts)
    src_id = None
    if req.fstype == 'bind':
        if req.state == 'mounted':
            _check_src(req, check_mode)
        src_id = source_identity(seen, req.src)
    decision = decide(req, mounts, kernel_ids, src_id)
    result = dict(changed=decision.action is not None, path=req.path, fstype=req.fstype, state=req.state,
                  created_dirs=[], unmounted=list(decision.unmount))
    before = sorted(describe(seen[p], kernel_ids) for p in seen if p == req.path or p.startswith(req.path + '/'))
    if decision.action == 'mount':
        result['created_dirs'] = missing_dirs(req.path)
    if want_diff:
        after = [line for line in before if line not in [describe(seen[p], kernel_ids) for p in decision.unmount]]
        if decision.action == 'mount':
            after.append(describe_request(req))
        result['diff'] = dict(before='\n'.join(before) + '\n' if before else '',
                              after='\n'.join(sorted(after)) + '\n' if after else '')
    if check_mode or decision.action is None:
        result['mount'] = mount_dict(decision.current, kernel_ids) if req.state == 'mounted' else None
        return result
    if decision.action == 'mount':
        for directory in result['created_dirs']:
            os.mkdir(directory, 0o755)
        try:
            _mount(req)
        except OSError as exc:
            for directory in reversed(result['created_dirs']):
                os.rmdir(directory)
            raise CgroupError(_mount_error(req, exc))
        # Read it back rather than trusting a silent success.
        now = visible(hz.read_mounts()).get(req.path)
        if now is None or not matches(req, now, kernel_ids, src_id):
            raise CgroupError('Failed to mount %s: the mount succeeded but /proc/self/mountinfo shows %s.'
                              % (describe_request(req), describe(now, kernel_ids) if now else 'nothing there'))
        result['mount'] = mount_dict(now, kernel_ids)
        return result
    for _attempt in range(16):
        for point in decision.unmount:
            _umount(req, point)
        # The same thing may be stacked on the point more than once.
        now = visible(hz.read_mounts()).get(req.path)
        if now is None or not matches(req, now, kernel_ids, src_id):
            break
        decision = Decision('umount', now, (req.path,))
    result['mount'] = None
    return result


def _umount(req, point):
    try:
        cgroupfs.umount(point)
    except OSError as exc:
        hint = ''
        if exc.errno == errno.EBUSY:
            hint = ('; something is mounted below it or a process uses it' +
                    ('' if req.recursive else ' (recursive: true unmounts what is mounted below it first)'))
        raise CgroupError('Failed to unmount %s: %s (%s)%s.' % (point, exc.strerror, _errname(exc), hint))
