# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the checkpoint and the restore share: the files the collection keeps
beside CRIU's images, the criu binary, and CRIU's own reason for a failure.

Beside the images, the criu_checkpoint role (cgroup_checkpoint) writes:
  cgroups.json       the cgroup snapshot of the container's whole tree;
  cgroup-tasks.json  the record: the tree's root PID, its top-level cgroups
                     and hierarchies, where each process was, and the cgroup
                     the image is rooted at (image_root, '' for CRIU's default).
Images taken by CRIU alone have neither; their cgroup.img is the fallback."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import shutil

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import CgroupError, Refusal, SpecError

SNAPSHOT_FILE = 'cgroups.json'
RECORD_FILE = 'cgroup-tasks.json'
CRIU_IMAGE = 'cgroup.img'
RECORD_VERSION = 1
# How many of CRIU's error lines a failure message quotes from its log.
LOG_ERRORS_QUOTED = 3
# The argument spec of the options every module that runs criu has; their
# documentation is the doc fragment checkpoint_restore.cgroups.criu.
CRIU_OPTIONS = dict(
    criu=dict(type='str', default='criu'),
    mountpoint=dict(type='path', default='/sys/fs/cgroup'),
)


class CriuFailed(CgroupError):
    """criu exited with an error; what the run wrote before stays (changed)."""

    def __init__(self, message, rc, stderr):
        super(CriuFailed, self).__init__(message)
        self.rc, self.stderr = rc, stderr


def module_main(module, run):
    """The main of a module that runs criu: run(params, run_command,
    check_mode, warn) with AnsibleModule's run_command, its result or
    failure returned as Ansible wants it."""
    def run_command(argv, cwd):
        return module.run_command(argv, cwd=cwd)

    try:
        result = run(module.params, run_command, check_mode=module.check_mode, warn=module.warn)
    except CriuFailed as exc:
        module.fail_json(msg=str(exc), changed=True, rc=exc.rc, stderr=exc.stderr)
    except CgroupError as exc:
        module.fail_json(msg=str(exc), changed=False)
    module.exit_json(**result)


def images_dir(path):
    if not path or not os.path.isabs(path):
        raise SpecError('Invalid images_dir %r: give the absolute path of the directory of CRIU\'s images.'
                        % (path,))
    return path


def find_criu(criu, what):
    """The criu binary's path; a Refusal naming WHAT when there is none."""
    found = shutil.which(criu or 'criu')
    if not found:
        raise Refusal('Failed to %s: %s is not an executable found on this host; install CRIU (Debian\'s package '
                      'criu) or set criu to its path. Nothing was written.' % (what, criu))
    return found


def read_checkpoint(images):
    """(src, record): the spec file to restore the cgroups from (the snapshot,
    else CRIU's cgroup.img) and the record ({} for images of CRIU alone)."""
    snapshot = os.path.join(images, SNAPSHOT_FILE)
    if not os.path.exists(snapshot):
        return os.path.join(images, CRIU_IMAGE), {}
    path = os.path.join(images, RECORD_FILE)
    try:
        with open(path) as handle:
            record = json.load(handle)
    except (IOError, OSError) as exc:
        raise Refusal('Failed to read the checkpoint in %s: %s: %s.' % (images, path, exc.strerror or exc))
    except ValueError as exc:
        raise SpecError('Invalid checkpoint record %s: %s.' % (path, exc))
    if not isinstance(record, dict) or record.get('version') != RECORD_VERSION or 'pid' not in record:
        raise SpecError('Invalid checkpoint record %s: it is not a version %d record of the criu_checkpoint role '
                        '(pid, tasks, paths).' % (path, RECORD_VERSION))
    return snapshot, record


def why(stderr, log):
    """CRIU's own reason for a failure: its last error lines in its log (it
    writes little to stderr), else its stderr; ends with a full stop."""
    errors = []
    try:
        with open(log, errors='replace') as handle:
            errors = [line.strip() for line in handle if 'Error' in line]
    except (IOError, OSError):
        pass
    text = ' '.join(errors[-LOG_ERRORS_QUOTED:]) or (stderr or '').strip()
    return (text + '.') if text and not text.endswith('.') else text
