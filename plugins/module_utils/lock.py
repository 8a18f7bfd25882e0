# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One host-wide lock, so that concurrent restores on a host are serialised."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import fcntl
import os
import time

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import LockTimeout

LOCK_DIRS = ('/run/lock', '/run', '/tmp')
LOCK_NAME = 'checkpoint_restore.cgroups.lock'


def lock_path():
    for directory in LOCK_DIRS:
        if os.path.isdir(directory):
            return os.path.join(directory, LOCK_NAME)
    return os.path.join('/tmp', LOCK_NAME)


# Paths whose lock this process holds, and how many `with` blocks hold it:
# cgroup_systemd_unit holds the lock around its unit part and the engine run
# inside it, which takes it again. A second flock() on a new descriptor
# would wait for the first.
_HELD = {}


class HostLock:
    """flock() on a file in /run/lock; `waited` tells how long we waited.
    Re-entrant within the process: an inner `with` on a lock the process
    holds goes on at once."""

    def __init__(self, timeout, path=None):
        self.timeout = timeout
        self.path = path or lock_path()
        self.waited = 0.0
        self._fd = None
        self._nested = False

    def __enter__(self):
        if _HELD.get(self.path):
            _HELD[self.path] += 1
            self._nested = True
            return self
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, 'O_CLOEXEC', 0), 0o600)
        start = time.monotonic()
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except (IOError, OSError):
                if time.monotonic() - start >= self.timeout:
                    os.close(self._fd)
                    self._fd = None
                    raise LockTimeout(self._timed_out())
                time.sleep(0.05)
        self.waited = time.monotonic() - start
        _HELD[self.path] = 1
        return self

    def wait_note(self):
        """The warning for a run that had to wait for the lock, or None."""
        if self.waited < 0.05:
            return None
        return 'Waited %.1f s for the host lock %s: another cgroup restore was running.' % (self.waited, self.path)

    def _timed_out(self):
        if not self.timeout:
            return ('Failed to take the host lock %s: another cgroup restore holds it, and lock_timeout 0 says not '
                    'to wait. Nothing was written; run again, or give lock_timeout the seconds to wait.' % self.path)
        return ('Failed to take the host lock %s: another cgroup restore held it for more than %s seconds. Nothing '
                'was written; run again, or raise lock_timeout.' % (self.path, self.timeout))

    def __exit__(self, *exc):
        if self._nested:
            _HELD[self.path] -= 1
            self._nested = False
        elif self._fd is not None:
            _HELD.pop(self.path, None)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        return False
