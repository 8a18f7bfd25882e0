# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cgroup_checkpoint's core: the cgroup half of a CRIU checkpoint, then the
dump. In one call, so that the snapshot is taken right before CRIU freezes
the tree and a checkpoint costs one module start on the target, not seven:

  1. find the process tree's cgroups (tasks.run, as cgroup_tasks);
  2. snapshot the container's whole tree (snapshot.take, as cgroup_snapshot),
     the limits above the processes' own cgroups and every cgroup v2 limit
     included, which CRIU's own cgroup.img does not hold;
  3. write both beside the images: cgroups.json and cgroup-tasks.json (the
     record: the tree's root PID, its top-level cgroups, where each process
     was, and the image's root), which the criu_restore role reads;
  4. run criu dump, its image rooted at the tree's top-level cgroup on cgroup
     v2, so that a restore can move the whole tree below another root.

Never freezes a cgroup itself: CRIU freezes the tree, and hangs on a cgroup
someone else froze (criu issue 2572). Writes no cgroup file."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import criu as cr
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import hierarchies as hz
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import snapshot
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import tasks
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import Refusal

DUMP_LOG = 'dump.log'


def run(params, run_command, check_mode=False, warn=None):
    """The module's result. run_command(argv, cwd) -> (rc, stdout, stderr)
    runs criu (AnsibleModule.run_command in the module)."""
    pid, images = params['pid'], cr.images_dir(params['images_dir'])
    criu = cr.find_criu(params.get('criu'), 'checkpoint process tree %d' % pid)
    mountpoint = params.get('mountpoint') or '/sys/fs/cgroup'
    tree = tasks.run(dict(pid=pid, depth=params.get('depth', 1), mountpoint=mountpoint), warn=warn)
    paths = params.get('cgroups') or tree['paths']
    spec = snapshot.take(dict(paths=paths, properties=params.get('properties') or ['builtin'], perms=True,
                              mountpoint=mountpoint), warn=warn)
    image_root = _image_root(paths, mountpoint)
    record = dict(version=cr.RECORD_VERSION, pid=pid, tops=tree['tops'], paths=paths,
                  controllers=tree['controllers'], tasks=tree['tasks'], image_root=image_root)
    argv = dump_argv(criu, pid, images, image_root, params.get('leave_running', False),
                     params.get('criu_args') or [])
    result = dict(changed=True, record=record, argv=argv, images_dir=images)
    if check_mode:
        return result
    _make_images_dir(images)
    snapshot.write_dest(spec, os.path.join(images, cr.SNAPSHOT_FILE))
    # The record names the tree's processes: root's only, as the images are.
    snapshot.write_dest(record, os.path.join(images, cr.RECORD_FILE), mode=0o600)
    rc, _out, err = run_command(argv, cwd=images)
    result.update(rc=rc, stderr=err)
    if rc != 0:
        raise cr.CriuFailed(
            'Failed to dump process tree %d with CRIU (exit code %d): %s See %s. The cgroup snapshot is in %s; '
            'no cgroup was changed.' % (pid, rc, cr.why(err, os.path.join(images, DUMP_LOG)),
                                        os.path.join(images, DUMP_LOG), os.path.join(images, cr.SNAPSHOT_FILE)),
            rc, err)
    return result


def dump_argv(criu, pid, images, image_root, leave_running, extra):
    """criu dump's arguments; --cgroup-root /TOP roots the image at the
    tree's top-level cgroup (see _image_root)."""
    argv = [criu, 'dump', '--tree', str(pid), '--images-dir', images, '--log-file', DUMP_LOG, '-v4']
    if image_root:
        argv += ['--cgroup-root', '/' + image_root]
    if leave_running:
        argv.append('--leave-running')
    return argv + [str(a) for a in extra]


def _image_root(paths, mountpoint):
    """The tree's top-level cgroup on cgroup v2, '' otherwise. On v1 CRIU's
    --cgroup-root applies to every hierarchy, also those where the tree is in
    the root cgroup, and the dump fails; the image keeps CRIU's default root."""
    if len(paths) != 1 or not hz.is_pure_v2(mountpoint):
        return ''
    return paths[0].strip('/')


def _make_images_dir(images):
    """The images directory, mode 0700: the images hold the processes' memory."""
    try:
        if not os.path.isdir(images):
            os.makedirs(images, 0o700)
        os.chmod(images, 0o700)
    except OSError as exc:
        raise Refusal('Failed to create the images directory %s: %s. Nothing was written.'
                      % (images, exc.strerror or exc))
