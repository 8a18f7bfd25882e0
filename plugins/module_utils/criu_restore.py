# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cgroup_criu_restore's core: the processes of a checkpoint back with CRIU,
into the cgroup tree the collection restored first, and the check that each
one is in its own cgroup. In one call, idempotent:

  1. are the processes of the record already running in their cgroups (a
     second run)? Then there is nothing to do: their PIDs are taken, and
     CRIU must not run again;
  2. criu restore, with --manage-cgroups soft (CRIU only moves the tasks into
     the tree that is there) and --cgroup-root where the tree moved: below a
     new root (ROOT/IMAGE_ROOT, the image is rooted at the tree's top) or
     into a systemd unit's cgroup;
  3. every process of the record in its cgroup, after that move, or a
     failure that names each one that is not.

Images taken by CRIU alone have no record: CRIU runs, and nothing is checked."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import criu as cr
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import tasks
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import Refusal

RESTORE_LOG = 'restore.log'


def run(params, run_command, check_mode=False, warn=None):
    """The module's result. run_command(argv, cwd) -> (rc, stdout, stderr)."""
    warn = warn or (lambda message: None)
    images = cr.images_dir(params['images_dir'])
    _src, record = cr.read_checkpoint(images)
    where = Placement(record, params.get('root') or '', params.get('unit_cgroup') or '',
                      params.get('mountpoint') or '/sys/fs/cgroup')
    criu = cr.find_criu(params.get('criu'), 'restore the checkpoint in %s' % images)
    argv = restore_argv(criu, images, params.get('manage_cgroups') or 'soft', where.cgroup_root,
                        params.get('criu_args') or [])
    result = dict(changed=True, argv=argv, in_place=False)
    if record:
        before = where.check(fail=False)
        if before['in_place']:
            return dict(result, changed=False, in_place=True, tasks=before['tasks'])
    else:
        warn('No %s in %s (images taken by CRIU alone): whether the processes are back in their cgroups is not '
             'checked.' % (cr.RECORD_FILE, images))
    if check_mode:
        return result
    rc, _out, err = run_command(argv, cwd=images)
    result.update(rc=rc, stderr=err)
    if rc != 0:
        log = os.path.join(images, RESTORE_LOG)
        raise cr.CriuFailed('criu restore failed (exit code %d): %s See %s.' % (rc, cr.why(err, log), log), rc, err)
    if record:
        after = where.check(fail=True)
        result.update(in_place=True, tasks=after['tasks'])
    return result


def restore_argv(criu, images, manage_cgroups, cgroup_root, extra):
    """criu restore's arguments. --restore-detached: CRIU returns once the
    tree runs. No --pidfile: the processes keep their PIDs (the record's)."""
    argv = [criu, 'restore', '--restore-detached', '--images-dir', images, '--log-file', RESTORE_LOG, '-v4',
            '--manage-cgroups=' + manage_cgroups]
    if cgroup_root:
        argv += ['--cgroup-root', '/' + cgroup_root]
    return argv + [str(a) for a in extra]


class Placement:
    """Where the record's processes belong on this host: at the paths they
    had, below ROOT (the whole tree moved), or with the image's root in a
    systemd unit's cgroup (UNIT_CGROUP in place of the tree's top)."""

    def __init__(self, record, root, unit_cgroup, mountpoint):
        self.record, self.mountpoint = record, mountpoint
        self.root, self.unit_cgroup = root.strip('/'), unit_cgroup.strip('/')
        image_root = (record.get('image_root') or '').strip('/')
        if (self.root or self.unit_cgroup) and not image_root:
            # The criu_restore role refuses this before any change; a caller
            # of the module alone is told the same.
            raise Refusal('Failed to restore the processes below %s: CRIU can move the tree only when its image is '
                          'rooted at the tree\'s top-level cgroup (image_root in %s, as the criu_checkpoint role '
                          'takes it on cgroup v2). Nothing was changed.'
                          % (self.unit_cgroup or self.root, cr.RECORD_FILE))
        self.image_root = image_root
        if self.unit_cgroup:
            self.cgroup_root = self.unit_cgroup
        elif self.root:
            self.cgroup_root = self.root + '/' + image_root
        else:
            self.cgroup_root = ''

    def check(self, fail):
        """cgroup_tasks' check of the record's tasks, after the move."""
        params = dict(pid=self.record['pid'], expect=self.record.get('tasks') or [], mountpoint=self.mountpoint,
                      fail_on_mismatch=fail, root=self.unit_cgroup or self.root or None,
                      root_from=self.image_root if self.unit_cgroup else None)
        return tasks.run(params)
