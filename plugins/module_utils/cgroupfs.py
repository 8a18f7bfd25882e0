# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Safe access to one cgroup hierarchy.

Every cgroup is reached from the hierarchy's mount through directory file
descriptors opened without following symlinks. The mount itself is checked to
be on a cgroup filesystem (statfs magic), and every directory below it and
every file written to be on the same device as the mount: the same st_dev is
the same superblock, hence the same (verified) cgroup filesystem, so a
directory needs no statfs of its own. A symlink, a bind mount of something
else, or a wrong mountpoint can therefore never turn into a write elsewhere.
Files are never created.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ctypes
import errno
import os
import resource
import stat
from collections import OrderedDict

CGROUP_SUPER_MAGIC = 0x27e0eb
CGROUP2_SUPER_MAGIC = 0x63677270
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, 'O_CLOEXEC', 0)
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, 'O_CLOEXEC', 0)
_WRITE_FLAGS = os.O_WRONLY | os.O_NOFOLLOW | getattr(os, 'O_CLOEXEC', 0)
_RDWR_FLAGS = os.O_RDWR | os.O_NOFOLLOW | getattr(os, 'O_CLOEXEC', 0)
# Not found, or not a directory (a file, or a symlink refused by O_NOFOLLOW).
_NOT_A_DIR = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)


def _dir_cache_size():
    """How many directory descriptors one OpenHierarchy keeps open: a
    32nd of the soft limit on open files, 8 to 256. Sixteen hierarchies then
    hold at most half the limit; the common soft limit of 1024 gives 32 each.
    (Keeping one per directory a run touched ran out of descriptors, EMFILE,
    at about 1,000 cgroups in three hierarchies under that limit.)"""
    try:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ValueError, OSError):
        soft = 1024
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(8, min(256, soft // 32))


_open, _pread, _close = os.open, os.pread, os.close
_libc = None


class NotCgroupFS(Exception):
    """The path is not (or no longer) on the expected cgroup filesystem."""


def _get_libc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def fs_magic(fd):
    """f_type of fstatfs(fd). f_type is the first field of struct statfs;
    it is a 32-bit unsigned int on s390x and a native long elsewhere."""
    buf = ctypes.create_string_buffer(512)
    if _get_libc().fstatfs(fd, buf) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    ftype = ctypes.c_uint if os.uname()[4] == 's390x' else ctypes.c_ulong
    return ftype.from_buffer(buf).value & 0xffffffff


def mount(source, target, fstype, options):
    if _get_libc().mount(source.encode(), target.encode(), fstype.encode(), 0, options.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


MS_BIND = 4096


def bind(source, target):
    """mount --bind source target (not recursive)."""
    if _get_libc().mount(source.encode(), target.encode(), None, MS_BIND, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


def umount(target):
    if _get_libc().umount2(target.encode(), 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


def _read_names(dir_fd, names, unreadable, one_line):
    """{name: text} of the named files below dir_fd (see OpenHierarchy.read_files)."""
    found = {}
    for name in names:
        try:
            fd = _open(name, _READ_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ENOENT or exc.errno in unreadable:
                found[name] = None
                continue
            raise
        try:
            if name in one_line:
                # _read_all's one-line case, inline: most files of a tree are read here
                data = _pread(fd, 65536, 0)
                if len(data) < 4096 and data[-1:] == b'\n' and data.count(b'\n') == 1:
                    found[name] = data.decode('utf-8', 'replace')
                    continue
            found[name] = _read_all(fd)
        except OSError as exc:
            if exc.errno not in unreadable:
                raise
            found[name] = None
        finally:
            _close(fd)
    return found


class OpenHierarchy:
    """An open handle to one mounted hierarchy, through which its cgroups are
    read and written safely (hierarchies.Hierarchy is the description of a
    mount, from mountinfo). Paths are tuples of components."""

    def __init__(self, mount_point, version):
        self.mount_point = mount_point
        self.magic = CGROUP2_SUPER_MAGIC if version == 2 else CGROUP_SUPER_MAGIC
        # Open directory descriptors by path, least recently used first; at
        # most _keep of them besides the mount's own (path ()), which stays.
        self._dirs = OrderedDict()
        self._keep = _dir_cache_size()
        fd = os.open(mount_point, _DIR_FLAGS)
        try:
            self._check(fd, mount_point)
        except Exception:
            os.close(fd)
            raise
        self.dev = os.fstat(fd).st_dev
        self._dirs[()] = fd

    def _check(self, fd, where):
        magic = fs_magic(fd)
        if magic != self.magic:
            raise NotCgroupFS('%s is not a cgroup%s filesystem (statfs magic 0x%x)'
                              % (where, '2' if self.magic == CGROUP2_SUPER_MAGIC else '', magic))

    def close(self):
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs = OrderedDict()

    def _dir(self, path):
        """The open descriptor of a cgroup directory, opened below its
        parent's when it is not kept. A descriptor it returns is valid until
        the next call that opens a directory: use it before then."""
        fd = self._dirs.get(path)
        if fd is not None:
            self._dirs.move_to_end(path)
            return fd
        parent = self._dir(path[:-1])
        fd = self._open_dir(parent, path)[0]
        self._remember(path, fd)
        return fd

    def _remember(self, path, fd):
        """Keep fd as path's descriptor; close the least recently used ones
        beyond the cache's size (never the mount's own)."""
        self._dirs[path] = fd
        while len(self._dirs) > self._keep + 1:
            oldest = next(iter(self._dirs))
            if not oldest:
                self._dirs.move_to_end(oldest)
                continue
            os.close(self._dirs.pop(oldest))

    def _open_dir(self, parent, path):
        """(fd, stat) of path[-1] opened below the parent's descriptor, which
        is on this hierarchy's device. Same device, same superblock: the
        cgroup filesystem checked at the mount, so no statfs is needed here."""
        fd = os.open(path[-1], _DIR_FLAGS, dir_fd=parent)
        try:
            st = os.fstat(fd)
            if st.st_dev != self.dev:
                self._check(fd, self.where(path))  # names a filesystem that is not cgroup's
                raise NotCgroupFS('%s lies on another mount than %s' % (self.where(path), self.mount_point))
        except Exception:
            os.close(fd)
            raise
        return fd, st

    def _forget(self, path):
        for key in [k for k in self._dirs if k[:len(path)] == path and k]:
            os.close(self._dirs.pop(key))

    def where(self, path, name=None):
        parts = [self.mount_point.rstrip('/')] + list(path) + ([name] if name else [])
        return '/'.join(parts)

    def exists(self, path):
        """A fresh lookup: a cached descriptor outlives a removed directory."""
        return self.lookup(path) is not None

    def lookup(self, path):
        """A fresh lookup of a cgroup directory: its (mode bits, uid, gid),
        or None when it does not exist or is not a directory. Caches the new
        descriptor (a cached one may outlive a removed directory)."""
        if not path:
            return self.stat(())
        try:
            parent = self._dir(path[:-1])
            fd, st = self._open_dir(parent, path)
        except OSError as exc:
            if exc.errno in _NOT_A_DIR:
                self._forget(path)
                return None
            raise
        if path in self._dirs:
            self._forget(path)  # and the descriptors below it, which may be stale
        self._remember(path, fd)
        return (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)

    def read_cgroup(self, path, names, unreadable=(), one_line=()):
        """lookup(path) and read_files(path, names, ...) in one call, for the
        many cgroups of a tree: ((mode bits, uid, gid), {name: text or None}),
        or None when the cgroup does not exist or is not a directory."""
        perms = self.lookup(path)
        if perms is None:
            return None
        return perms, _read_names(self._dirs[path], names, unreadable, one_line)  # the newest: kept

    def subdirs(self, path):
        fd = self._dir(path)
        names = []
        for entry in os.scandir(fd):
            if entry.is_dir(follow_symlinks=False):
                names.append(entry.name)
        return sorted(names)

    def files(self, path):
        """Names of the regular files of a cgroup (its control files), sorted."""
        return sorted(entry.name for entry in os.scandir(self._dir(path))
                      if entry.is_file(follow_symlinks=False))

    def read(self, path, name):
        """The file's text, or None when the cgroup has no such file."""
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=self._dir(path))
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return None
            raise
        try:
            return _read_all(fd)
        finally:
            os.close(fd)

    def read_files(self, path, names, unreadable=(), one_line=()):
        """{name: text} of files of one cgroup; None for a file that does
        not exist, or whose read fails with an errno in `unreadable`.
        one_line: names of files that hold one line (see _read_all)."""
        return _read_names(self._dir(path), names, unreadable, one_line)

    def _open_for_write(self, path, name, flags):
        fd = os.open(name, flags, dir_fd=self._dir(path))
        try:
            if os.fstat(fd).st_dev != self.dev:
                raise NotCgroupFS('%s lies on another mount than %s' % (self.where(path, name), self.mount_point))
        except Exception:
            os.close(fd)
            raise
        return fd

    def write(self, path, name, text):
        """One write() of text. Never creates the file."""
        fd = self._open_for_write(path, name, _WRITE_FLAGS)
        try:
            _write_once(fd, text)
        finally:
            os.close(fd)

    def write_read(self, path, name, text, one_line=False):
        """One write() of text, then the file's text as the kernel reads it
        back, through one descriptor. Never creates the file. one_line: the
        file holds one line (see _read_all)."""
        try:
            fd = self._open_for_write(path, name, _RDWR_FLAGS)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise
            # not readable through a writing descriptor: two opens
            self.write(path, name, text)
            return self.read(path, name)
        try:
            _write_once(fd, text)
            return _read_all(fd, one_line)
        finally:
            os.close(fd)

    def mkdir(self, path, mode=0o755):
        """Create the cgroup; returns the os.stat_result of its directory."""
        parent = self._dir(path[:-1])
        os.mkdir(path[-1], mode, dir_fd=parent)
        if path in self._dirs:
            self._forget(path)  # a descriptor of a directory removed since
        fd, st = self._open_dir(parent, path)
        self._remember(path, fd)
        return st

    def rmdir(self, path):
        parent = self._dir(path[:-1])
        self._forget(path)
        os.rmdir(path[-1], dir_fd=parent)

    def _entry(self, path, name):
        """(dir fd, entry name) for a cgroup directory (name None) or a file in it."""
        if name is None:
            return self._dir(path[:-1]), path[-1]
        return self._dir(path), name

    def stat(self, path, name=None):
        """(mode bits, uid, gid), or None when a file does not exist."""
        if not path and name is None:
            st = os.fstat(self._dir(()))
        else:
            fd, entry = self._entry(path, name)
            try:
                st = os.stat(entry, dir_fd=fd, follow_symlinks=False)
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    return None
                raise
            if stat.S_ISLNK(st.st_mode):
                raise NotCgroupFS('%s is a symlink' % self.where(path, name))
        if st.st_dev != self.dev:
            raise NotCgroupFS('%s lies on another mount than %s' % (self.where(path, name), self.mount_point))
        return (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)

    def chmod(self, path, name, mode):
        self.stat(path, name)  # refuses symlinks and other mounts
        if not path and name is None:
            os.fchmod(self._dir(()), mode)
            return
        fd, entry = self._entry(path, name)
        os.chmod(entry, mode, dir_fd=fd)

    def chown(self, path, name, uid, gid):
        uid = -1 if uid is None else uid
        gid = -1 if gid is None else gid
        if not path and name is None:
            os.fchown(self._dir(()), uid, gid)
            return
        fd, entry = self._entry(path, name)
        os.chown(entry, uid, gid, dir_fd=fd, follow_symlinks=False)


def _read_all(fd, one_line=False):
    """Text from offset 0 to the end of file (pread: a write moves the offset).
    one_line: the file holds one short line, shown by the kernel as a single
    seq_file record, which one read() returns whole; then a read that returns
    exactly one line shorter than a page needs no second read to see the end."""
    data = os.pread(fd, 65536, 0)
    if one_line and len(data) < 4096 and data.endswith(b'\n') and data.count(b'\n') == 1:
        return data.decode('utf-8', 'replace')
    if data:
        chunk = os.pread(fd, 65536, len(data))
        if chunk:
            chunks = [data, chunk]
            offset = len(data) + len(chunk)
            while chunk:
                chunk = os.pread(fd, 65536, offset)
                chunks.append(chunk)
                offset += len(chunk)
            data = b''.join(chunks)
    return data.decode('utf-8', 'replace')


def _write_once(fd, text):
    data = text.encode('utf-8')
    written = os.write(fd, data)
    if written != len(data):
        raise OSError(errno.EIO, 'short write (%d of %d bytes)' % (written, len(data)))


def prepare_mount_dir(mountpoint, name):
    """Make sure <mountpoint>/<name> is an empty directory that we may mount a
    hierarchy on. Returns True if it was created. Refuses a mountpoint that is
    itself a cgroup filesystem (a mkdir there would create a cgroup)."""
    fd = os.open(mountpoint, _DIR_FLAGS)
    try:
        magic = fs_magic(fd)
        if magic in (CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC):
            raise NotCgroupFS('%s is itself a cgroup filesystem; a hierarchy cannot be mounted inside it'
                              % mountpoint)
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
            os.mkdir(name, 0o755, dir_fd=fd)
            return True
        if not stat.S_ISDIR(st.st_mode):
            raise NotCgroupFS('%s/%s exists and is not a directory' % (mountpoint.rstrip('/'), name))
        sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
        try:
            if os.listdir(sub):
                raise NotCgroupFS('%s/%s exists, is not empty and is not a cgroup mount'
                                  % (mountpoint.rstrip('/'), name))
        finally:
            os.close(sub)
        return False
    finally:
        os.close(fd)


def remove_mount_dir(mountpoint, name):
    fd = os.open(mountpoint, _DIR_FLAGS)
    try:
        os.rmdir(name, dir_fd=fd)
    finally:
        os.close(fd)
