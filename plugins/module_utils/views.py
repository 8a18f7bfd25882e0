# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cgroup_views' core: bind mode's premount, steps 1 to 3 of the
cgroup_premount role, for every container of the host in one call (each step
a module call of its own cost a module start on the target per hierarchy):

  cgroup v1 (the mount visible at the mountpoint is not cgroup2)
    1. mount each hierarchy the containers need at MOUNTPOINT/DIR;
    2. create each container's top-level cgroup (opport: adopted when it is
       there, its perms converged; created with its ancestors when not);
    3. mount a tmpfs at each container's view, bind the top-level cgroup of
       each of its hierarchies to VIEW/DIR, and add the co-mount symlinks a
       host has (cpu -> cpu,cpuacct).
  cgroup v2 (one tree, mounted at the mountpoint)
    2. create each top-level cgroup, its controllers enabled above it;
    3. bind it onto the view itself: the view's root is that cgroup.

Step 4, the restore through each view, stays a cgroup_restore call of its
own (bind mode), with its report, diff and rollback. state=absent undoes the
premount in reverse: prunes each top-level cgroup's empty subcgroups,
unmounts the view, and removes the top-level cgroup when it is empty; the
hierarchies stay mounted, shared with everything else.

Each mount is cgroup_mount's (mounts.run), each cgroup change the engine's
(restore.run): this module decides only the order and what each container
needs. A failure reports what the run did until then (ViewsError.result), so
that a caller can undo it."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import cgroupfs
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import hierarchies as hz
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import mounts
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import restore
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import CgroupError, SpecError

# Keys of a container entry: these; the restore step's (spec, src, spec_root)
# pass through unread, so the role gives this module its list as it is.
_OWN_KEYS = ('name', 'controllers', 'cgroup', 'view', 'perms')
_RESTORE_KEYS = ('spec', 'src', 'spec_root')
# "unified" names the v2 tree itself, for a container that enables nothing.
UNIFIED = 'unified'


class ViewsError(CgroupError):
    """A step failed; result holds what the run had done until then."""

    def __init__(self, message, result):
        super(ViewsError, self).__init__(message)
        self.result = result


class Container:
    """One entry of the containers list, checked."""

    def __init__(self, entry, index):
        if not isinstance(entry, dict):
            raise SpecError('Invalid containers[%d]: give a mapping with name, controllers, cgroup and view.' % index)
        unknown = sorted(set(entry) - set(_OWN_KEYS) - set(_RESTORE_KEYS))
        name = entry.get('name')
        if not isinstance(name, str) or not name:
            raise SpecError('Invalid containers[%d]: name must be a non-empty string.' % index)
        if unknown:
            raise SpecError('Invalid container %s: unknown keys %s (known: %s).'
                            % (name, ', '.join(unknown), ', '.join(_OWN_KEYS + _RESTORE_KEYS)))
        self.name = name
        self.cgroup = _text(entry, 'cgroup', name).strip('/')
        if not self.cgroup:
            raise SpecError('Invalid container %s: cgroup must name its top-level cgroup, not the root.' % name)
        self.view = _text(entry, 'view', name).rstrip('/')
        if not os.path.isabs(self.view):
            raise SpecError('Invalid container %s: view must be an absolute path, not %r.' % (name, self.view))
        controllers = entry.get('controllers')
        if not isinstance(controllers, list) or not controllers or not all(
                isinstance(c, str) and c.strip(',') for c in controllers):
            raise SpecError('Invalid container %s: controllers must list its hierarchies, one entry each '
                            '("cpu,cpuacct", "memory", "name=systemd").' % name)
        # One entry per v1 hierarchy, its controllers sorted, as the host names it.
        self.hierarchies = sorted(set(tuple(sorted(c for c in h.split(',') if c)) for h in controllers))
        self.perms = entry.get('perms')
        if self.perms is not None and not isinstance(self.perms, dict):
            raise SpecError('Invalid container %s: perms must be a mapping {mode, uid, gid}.' % name)

    def controllers(self):
        """Every controller of its hierarchies, each once."""
        return sorted(set(c for h in self.hierarchies for c in h))

    def v2_controllers(self):
        """On cgroup v2: its controllers without the named v1 hierarchies,
        which have no v2 counterpart; unified when nothing is left."""
        return [c for c in self.controllers() if not c.startswith('name=')] or [UNIFIED]


def _text(entry, key, name):
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise SpecError('Invalid container %s: %s must be a non-empty string.' % (name, key))
    return value.strip()


def parse_containers(items):
    if not isinstance(items, list):
        raise SpecError('Invalid containers: give a list of mappings.')
    containers = [Container(entry, i) for i, entry in enumerate(items)]
    for key in ('name', 'view', 'cgroup'):
        seen = {}
        for c in containers:
            other = seen.setdefault(getattr(c, key), c.name)
            if other != c.name:
                raise SpecError('Invalid containers: %s and %s have the same %s %s; each container needs its own '
                                'name, view and top-level cgroup.' % (other, c.name, key, getattr(c, key)))
    return containers


def hierarchy_dir(controllers):
    """A hierarchy's directory below the mountpoint, as a host names it:
    its controllers without "name=", sorted (cpu,cpuacct; systemd)."""
    return ','.join(sorted(c[len('name='):] if c.startswith('name=') else c for c in controllers))


def run(params, check_mode=False, warn=None):
    warn = warn or (lambda message: None)
    containers = parse_containers(params.get('containers') or [])
    mountpoint = params.get('mountpoint') or '/sys/fs/cgroup'
    v2 = hz.is_pure_v2(mountpoint)
    work = _Run(mountpoint, v2, check_mode, warn)
    try:
        if params.get('state', 'present') == 'absent':
            for c in containers:
                work.take_down(c)
        else:
            work.put_up(containers, params.get('view_options'))
    except CgroupError as exc:
        raise ViewsError(str(exc), work.result())
    except (IOError, OSError) as exc:
        raise ViewsError('Failed to %s the containers\' views: %s.' % (
            'take down' if params.get('state') == 'absent' else 'premount', exc), work.result())
    return work.result()


class _Run:
    """One run's steps and what each did, in the module's result's form."""

    def __init__(self, mountpoint, v2, check_mode, warn):
        self.mountpoint, self.v2, self.check_mode, self.warn = mountpoint, v2, check_mode, warn
        self.hierarchies = []   # step 1: [{path, changed}]
        self.containers = []    # per container: what each step did to it

    def result(self):
        changed = any(h['changed'] for h in self.hierarchies) or any(
            c['changed'] for c in self.containers)
        return dict(changed=changed, v2=self.v2, hierarchies=self.hierarchies, containers=self.containers)

    # present ------------------------------------------------------------

    def put_up(self, containers, view_options):
        pending = set() if self.v2 else self._mount_hierarchies(containers)
        for c in containers:
            # view_mounted: this run mounted the view (the caller's undo
            # unmounts only that); view_changed: any mount of step 3.
            entry = dict(name=c.name, cgroup=c.cgroup, view=c.view, changed=False, pending=False,
                         view_mounted=False, view_changed=False, view_mount=self._view_mount(c),
                         root_controllers=c.v2_controllers() if self.v2 else [','.join(h) for h in c.hierarchies])
            self.containers.append(entry)
            # In check mode a hierarchy that is not mounted yet cannot be
            # looked into: that container is left to a real run.
            if self.check_mode and pending.intersection(c.hierarchies):
                entry.update(pending=True, changed=True)
                continue
            self._make_toplevel(c, entry)
            if self.v2:
                self._bind(entry, c.view, os.path.join(self.mountpoint, c.cgroup), is_view=True)
            else:
                self._mount_v1_view(c, entry, view_options)
            # In check mode a view that is not mounted yet cannot be looked into.
            entry['pending'] = self.check_mode and entry['view_changed']

    def _mount_hierarchies(self, containers):
        """Step 1; the hierarchies a real run would mount (check mode)."""
        mounted = set()
        for h in sorted(set(h for c in containers for h in c.hierarchies)):
            path = os.path.join(self.mountpoint, hierarchy_dir(h))
            done = mounts.run(dict(path=path, state='mounted', fstype='cgroup', controllers=list(h)),
                              check_mode=self.check_mode)
            self.hierarchies.append(dict(path=path, controllers=list(h), changed=done['changed']))
            if done['changed']:
                mounted.add(h)
        return mounted

    def _make_toplevel(self, c, entry):
        """Step 2, through the engine: opport adopts a top-level cgroup that
        exists (a container manager may have made it) and creates a missing
        one with its ancestors (on v2 enabling its controllers from the top
        down to its parent); only the perms converge here."""
        cgroup = dict(controllers=c.v2_controllers() if self.v2 else c.controllers())
        if c.perms is not None:
            cgroup['perms'] = c.perms
        done = restore.run(dict(mode='opport', mountpoint=self.mountpoint, report='counts',
                                spec=dict(version=1, cgroups={c.cgroup: cgroup})),
                           check_mode=self.check_mode, warn=self.warn)
        entry['toplevel_changed'] = done['changed']
        entry['changed'] = entry['changed'] or done['changed']
        if done['changed'] and not self.check_mode:
            entry['undo'] = done['undo']

    def _view_mount(self, c):
        if self.v2:
            return dict(path=c.view, fstype='bind', src=os.path.join(self.mountpoint, c.cgroup))
        return dict(path=c.view, fstype='tmpfs')

    def _mount_v1_view(self, c, entry, view_options):
        done = mounts.run(dict(path=c.view, state='mounted', fstype='tmpfs', options=view_options),
                          check_mode=self.check_mode)
        self._note(entry, done['changed'], is_view=True)
        for h in c.hierarchies:
            directory = hierarchy_dir(h)
            self._bind(entry, os.path.join(c.view, directory),
                       os.path.join(self.mountpoint, directory, c.cgroup), is_view=False)
            plain = [name for name in h if not name.startswith('name=')]
            if len(plain) > 1:
                for name in plain:
                    self._link(entry, os.path.join(c.view, name), directory)

    def _bind(self, entry, path, src, is_view):
        done = mounts.run(dict(path=path, state='mounted', fstype='bind', src=src), check_mode=self.check_mode)
        self._note(entry, done['changed'], is_view)

    def _note(self, entry, changed, is_view):
        entry['changed'] = entry['changed'] or changed
        entry['view_changed'] = entry['view_changed'] or changed
        if is_view:
            entry['view_mounted'] = changed

    def _link(self, entry, path, target):
        """PATH -> TARGET, as a host has cpu -> cpu,cpuacct."""
        if os.path.islink(path):
            if os.readlink(path) == target:
                return
        elif os.path.lexists(path) and not (self.check_mode and entry['view_mounted']):
            raise CgroupError('Failed to add the symlink %s -> %s in the view of container %s: %s is there and is '
                              'not a symlink.' % (path, target, entry['name'], path))
        entry['changed'] = True
        if self.check_mode:
            return
        tmp = path + '.cgroup_views'
        try:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(target, tmp)
            os.rename(tmp, path)
        except OSError as exc:
            raise CgroupError('Failed to add the symlink %s -> %s in the view of container %s: %s.'
                              % (path, target, entry['name'], exc.strerror or exc))

    # absent -------------------------------------------------------------

    def take_down(self, c):
        """The reverse of put_up for one container: its empty subcgroups
        (those with tasks stay), its view, then its empty top-level cgroups."""
        entry = dict(name=c.name, cgroup=c.cgroup, view=c.view, changed=False, kept=[], removed=[])
        self.containers.append(entry)
        tops = self._tops(c)
        for controllers, _point, _version in tops:
            done = restore.run(dict(mode='bind', mountpoint=self.mountpoint, restore_properties='none', prune=True,
                                    report='counts', spec=dict(version=1, cgroups={c.cgroup: dict(
                                        controllers=controllers)})),
                               check_mode=self.check_mode, warn=self.warn)
            entry['changed'] = entry['changed'] or done['changed']
        view = self._view_mount(c)
        done = mounts.run(dict(view, state='unmounted', recursive=True), check_mode=self.check_mode)
        entry['changed'] = entry['changed'] or done['changed']
        for _controllers, point, version in tops:
            self._remove_if_empty(entry, point, version, tuple(c.cgroup.split('/')))

    def _tops(self, c):
        """(controllers, mount point, version) of each of the container's
        hierarchies where its top-level cgroup exists. "unified" needs no
        controller enabled: its prune writes nothing but the rmdirs."""
        if self.v2:
            found = [([UNIFIED], self.mountpoint, 2)]
        else:
            found = [(list(h), os.path.join(self.mountpoint, hierarchy_dir(h)), 1) for h in c.hierarchies]
        return [(controllers, point, version) for controllers, point, version in found
                if os.path.isdir(os.path.join(point, c.cgroup))]

    def _remove_if_empty(self, entry, point, version, path):
        """rmdir is the only way to remove a cgroup; the kernel itself also
        refuses one with tasks or children. Through cgroupfs.OpenHierarchy, as
        every cgroup change: no symlink is followed out of the hierarchy. In
        check mode the subcgroups the prune would remove are still there, and
        counted as gone."""
        top = os.path.join(point, *path)
        try:
            fs = cgroupfs.OpenHierarchy(point, version)
        except (OSError, cgroupfs.NotCgroupFS) as exc:
            raise CgroupError('Failed to open hierarchy %s: %s.' % (point, exc))
        try:
            children = fs.subdirs(path)
            tasks = (fs.read(path, 'cgroup.procs') or '').split()
            if tasks or (children and not self.check_mode):
                reason = 'tasks' if tasks else 'subcgroups'
                entry['kept'].append(dict(path=top, reason=reason))
                self.warn('Kept %s: it still has %s.' % (top, reason))
                return
            entry['changed'] = True
            entry['removed'].append(top)
            if not self.check_mode:
                fs.rmdir(path)
        except OSError as exc:
            raise CgroupError('Failed to remove the top-level cgroup %s of container %s: %s.'
                              % (top, entry['name'], exc.strerror or exc))
        finally:
            fs.close()
