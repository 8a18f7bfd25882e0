# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cgroup_systemd_unit's core: a container's top-level cgroup as a transient
systemd service with Delegate=yes (its limits unit properties, read back from
the kernel's files), and the spec's subcgroups restored below it by the
engine (restore.run), in the delegated part only. docs/SYSTEMD.md."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import subprocess
import time

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import hierarchies as hz
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import properties
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import restore
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import spec as sp
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import translate as translate_mod
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import unit_properties as up
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import CgroupError, Refusal, SpecError
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.lock import HostLock

ARGUMENT_SPEC = dict(
    unit=dict(type='str', required=True),
    slice=dict(type='str', default='machine.slice'),
    spec=dict(type='dict'),
    src=dict(type='path'),
    format=dict(type='str', default='auto', choices=['auto', 'native', 'criu', 'crit_json', 'cgconfig']),
    top=dict(type='str'),
    mode=dict(type='str', default='strict', choices=['strict', 'opport']),
    state=dict(type='str', default='present', choices=['present', 'absent']),
    lock_timeout=dict(type='int', default=60),
)
MOUNTPOINT = '/sys/fs/cgroup'
HOLDER = 'holder'  # the leaf of the unit's main process (holder_command)


def check_host(hierarchies, pid1):
    """Refuse a host where this way does not apply: PID 1 not systemd, or
    cgroup v1 / hybrid (systemd's cgroup v1 controllers are no delegation
    this module supports)."""
    if pid1 != 'systemd':
        raise Refusal('Failed to restore through systemd: PID 1 is %r, not systemd. Use '
                      'checkpoint_restore.cgroups.cgroup_restore on this host.' % pid1)
    if len(hierarchies) != 1 or hierarchies[0].version != 2 or hierarchies[0].mount_point != MOUNTPOINT:
        layout = ', '.join('%s (v%d)' % (h.mount_point, h.version) for h in hierarchies) or 'no cgroup hierarchy'
        raise Refusal('Failed to restore through systemd: this host is not pure cgroup v2 (%s: %s). Delegation '
                      'of a cgroup v1 or hybrid layout is not supported; use '
                      'checkpoint_restore.cgroups.cgroup_restore with allow_systemd_managed where systemd '
                      'delegates the subtree.' % (MOUNTPOINT, layout))


def slice_path(name):
    """'a-b.slice' -> ('a.slice', 'a-b.slice'); '-.slice' -> ()."""
    if not name.endswith('.slice') or '/' in name:
        raise SpecError('Invalid slice %r: give a slice unit name such as machine.slice.' % (name,))
    stem = name[:-len('.slice')]
    if stem == '-':
        return ()
    parts = stem.split('-')
    if not all(parts):
        raise SpecError('Invalid slice %r: empty component.' % (name,))
    return tuple('-'.join(parts[:i]) + '.slice' for i in range(1, len(parts) + 1))


def unit_name(name):
    if not isinstance(name, str) or not name.endswith('.service') or '/' in name or len(name) <= len('.service'):
        raise SpecError('Invalid unit %r: give a service unit name such as ct1.service.' % (name,))
    return name


def split_spec(spec, top):
    """(the top-level cgroup's CgroupSpec or None, its path, [subcgroup
    CgroupSpec with paths relative to the top])."""
    paths = [cg.path for cg in spec.cgroups]
    if top is None:
        if () in paths:
            top_path = ()
        else:
            firsts = set(p[:1] for p in paths)
            if len(firsts) != 1:
                raise SpecError('Failed to restore through systemd: the spec has %d top-level cgroups (%s); give '
                                'top, the one that becomes the unit.'
                                % (len(firsts), ', '.join(sorted(sp.show_path(f) for f in firsts))))
            top_path = firsts.pop()
    else:
        top_path = sp.split_path(top, 'top') if top not in ('', '/') else ()
    top_cg, children = None, []
    for cg in spec.cgroups:
        if cg.path == top_path:
            top_cg = cg
        elif cg.path[:len(top_path) + 1] == top_path + (HOLDER,):
            continue  # the module's own leaf, in a snapshot of such a unit (holder_command)
        elif cg.path[:len(top_path)] == top_path:
            children.append(cg._replace(path=cg.path[len(top_path):]))
        else:
            raise SpecError('Failed to restore through systemd: cgroup %r lies outside the top %r.'
                            % (sp.show_path(cg.path), sp.show_path(top_path)))
    return top_cg, top_path, children


def unit_settings(top_cg, unit):
    """{file: canonical value} of the top-level cgroup, in v2 names, and the
    refusal of any file no unit property sets (by cgroup and property)."""
    if top_cg is None:
        return {}
    props, refused = translate_mod.for_hierarchy(list(top_cg.properties), 2)
    where = sp.show_path(top_cg.path)
    for name, reason in sorted((refused or {}).items()):
        raise Refusal('Failed to restore %s (unit %s) property %s: %s. Nothing was done.' % (where, unit, name, reason))
    bad = up.unmapped((p.name, p.value) for p in props)
    if bad:
        raise Refusal('Failed to restore %s as unit %s: %s has no unit property (the ones that map: %s). '
                      'Move it to a subcgroup, or leave it out. Nothing was done.'
                      % (where, unit, ', '.join('property %s' % n for n in bad), ', '.join(sorted(up.TABLE))))
    return dict((p.name, p.value) for p in props if p.name in up.TABLE)


class Systemd:
    """systemctl and systemd-run; run(argv) -> (rc, out, err)."""

    def __init__(self, runner=None):
        self.run = runner or _run

    def show(self, unit, names):
        rc, out, err = self.run(['systemctl', 'show', unit, '--property=' + ','.join(names)])
        if rc != 0:
            raise Refusal('Failed to read unit %s: %s' % (unit, err.strip()))
        found = {}
        for line in out.splitlines():
            key, _sep, value = line.partition('=')
            found[key] = value
        return found

    def must(self, argv):
        rc, out, err = self.run(argv)
        if rc != 0:
            raise Refusal('Failed: %s (exit %d): %s' % (' '.join(argv), rc, (err or out).strip()))
        return out


def holder_command(cgroup_dir):
    """The unit's main process: it moves itself into the leaf HOLDER below
    the unit's cgroup and sleeps. systemd 252 removes the cgroup of a service
    with no process (an exited RemainAfterExit=yes service has none, checked
    in the VM), and a process in the unit's own cgroup would forbid
    controllers below it (cgroup v2's no-internal-process rule); systemd
    254's DelegateSubgroup= does the same move."""
    leaf = os.path.join(cgroup_dir, HOLDER)
    return ['/bin/sh', '-c', 'mkdir -p "%s" && echo 0 > "%s/cgroup.procs" && exec sleep infinity' % (leaf, leaf)]


def _wait_for_holder(systemd, unit, cgroup_dir, seconds=20.0):
    procs = os.path.join(cgroup_dir, HOLDER, 'cgroup.procs')
    deadline = time.time() + seconds
    while time.time() < deadline:
        if (_read(procs) or '').strip() and not (_read(os.path.join(cgroup_dir, 'cgroup.procs')) or '').strip():
            return
        time.sleep(0.1)
    systemd.run(['systemctl', 'stop', unit])
    raise Refusal('Failed to start unit %s: its holder process did not reach %s within %d s; the unit was stopped (systemctl status %s).'
                  % (unit, procs, seconds, unit))


def _run(argv):
    # The module passes AnsibleModule.run_command; this is for callers without
    # one (the tests). The argument list is never run by a shell.
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,  # pylint: disable=ansible-bad-function
                            universal_newlines=True)
    out, err = proc.communicate()
    return proc.returncode, out, err


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def drift(settings, cgroup_dir, page_size, read=_read):
    """{file: (wanted canonical, kernel text)} of the settings the kernel's
    files of the unit's cgroup do not mean (compared as values.py does)."""
    out = {}
    for name in sorted(settings):
        wanted = up.expected(name, settings[name])
        raw = read(os.path.join(cgroup_dir, name))
        kind = properties.kind_of(name)
        same = raw is None and up.is_default(name, wanted, page_size)
        if raw is not None:
            try:
                same = kind.same(wanted, kind.read(raw), page_size)
            except ValueError:
                same = False
        if not same:
            out[name] = (wanted, None if raw is None else raw.strip())
    return out


def _assign(settings, names):
    argv = []
    for name in sorted(names):
        for prop, text in up.assignments(name, settings[name]):
            argv.append('%s=%s' % (prop, text))
    return argv


def _show(name, value):
    kind = properties.kind_of(name)
    return kind.show(value)


def run(params, check_mode=False, want_diff=False, warn=None, systemd=None, hierarchies=None, pid1=None):
    warn = warn or (lambda message: None)
    systemd = systemd or Systemd()
    unit = unit_name(params.get('unit'))
    slice_name = params.get('slice') or ARGUMENT_SPEC['slice']['default']
    cgroup = slice_path(slice_name) + (unit,)
    if hierarchies is None:
        _kernel, hierarchies = hz.read_hierarchies(MOUNTPOINT)
    if pid1 is None:
        pid1 = (_read('/proc/1/comm') or '').strip()
    check_host(hierarchies, pid1)
    # Under the host lock from reading the unit's state to the engine's run
    # below it, so that a concurrent restore or unit run on the host cannot
    # change what this one read (the engine takes the same lock again, which
    # goes on at once).
    with HostLock(restore.lock_timeout(params)) as lock:
        if lock.wait_note():
            warn(lock.wait_note())
        return _converge(params, check_mode, want_diff, warn, systemd, unit, slice_name, cgroup)


def _converge(params, check_mode, want_diff, warn, systemd, unit, slice_name, cgroup):
    cgroup_dir = os.path.join(MOUNTPOINT, *cgroup)
    state = params.get('state') or 'present'
    info = systemd.show(unit, ['LoadState', 'ActiveState', 'Delegate', 'ControlGroup', 'Slice'])
    exists = info.get('ActiveState') in ('active', 'reloading', 'activating') or os.path.isdir(cgroup_dir)
    result = dict(unit=unit, slice=slice_name, cgroup='/' + '/'.join(cgroup), changed=False,
                  unit_created=False, unit_properties=[], removed=False)
    if state == 'absent':
        present = exists or info.get('ActiveState') == 'failed'
        if want_diff:
            result['diff'] = dict(before='unit %s\n' % unit if present else '', after='')
        if present:
            result['changed'] = True
            if not check_mode:
                systemd.run(['systemctl', 'stop', unit])
                systemd.run(['systemctl', 'reset-failed', unit])
                if os.path.isdir(cgroup_dir):
                    raise Refusal('Failed to remove unit %s: its cgroup %s is still there after systemctl stop.'
                                  % (unit, cgroup_dir))
                result['removed'] = True
        return result
    data = params.get('spec')
    if data is None:
        if not params.get('src'):
            raise SpecError('Invalid options: give the spec inline (spec) or as a file on the target (src).')
        from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import formats
        data, notes = formats.load_src(params['src'], params.get('format') or 'auto')
        for note in notes:
            warn(note)
    spec = sp.load_spec(data, resolve=restore.id_resolver())
    top_cg, top_path, children = split_spec(spec, params.get('top'))
    settings = unit_settings(top_cg, unit)
    page_size = os.sysconf('SC_PAGE_SIZE')
    before_lines, after_lines = [], []
    if exists:
        if info.get('Delegate') != 'yes':
            raise Refusal('Failed to restore into unit %s: it exists without Delegate=yes, so its subtree is '
                          'systemd\'s. Stop it first (state: absent).' % unit)
        if info.get('ControlGroup') and info['ControlGroup'] != result['cgroup']:
            raise Refusal('Failed to restore into unit %s: its cgroup is %s, not %s (slice %s).'
                          % (unit, info['ControlGroup'], result['cgroup'], slice_name))
        differs = drift(settings, cgroup_dir, page_size)
        for name in sorted(settings):
            now = differs[name][1] if name in differs else _show(name, up.expected(name, settings[name]))
            before_lines.append('%s %s = %s' % (unit, name, now))
    else:
        differs = dict((name, (up.expected(name, value), None)) for name, value in settings.items())
    for name in sorted(settings):
        after_lines.append('%s %s = %s' % (unit, name, _show(name, up.expected(name, settings[name]))))
    assigned = _assign(settings, differs) if exists else _assign(settings, settings)
    result['unit_properties'] = assigned if (differs or not exists) else []
    made = False
    if not check_mode:
        if not exists:
            argv = ['systemd-run', '--unit=' + unit, '--slice=' + slice_name, '--quiet', '--collect',
                    '-p', 'Delegate=yes']
            for item in assigned:
                argv.extend(['-p', item])
            systemd.must(argv + holder_command(cgroup_dir))
            made = True
            _wait_for_holder(systemd, unit, cgroup_dir)
        elif differs:
            systemd.must(['systemctl', 'set-property', '--runtime', unit] + assigned)
        left = drift(settings, cgroup_dir, page_size)
        if left:
            if made:
                systemd.run(['systemctl', 'stop', unit])
            raise Refusal('Failed to restore unit %s: after systemd set its properties the kernel reads %s.'
                          % (unit, '; '.join('%s %s (wanted %s)' % (n, v[1], _show(n, v[0]))
                                             for n, v in sorted(left.items()))))
    result['unit_created'] = not exists
    result['changed'] = bool(not exists or differs)
    engine = dict(mode=params.get('mode') or 'strict', allow_systemd_managed=True,
                  root='/'.join(cgroup), lock_timeout=params.get('lock_timeout', 60))
    subtree = None
    if children:
        engine['spec'] = dict(version=data.get('version', 1), cgroups=_children_data(data, top_path))
        try:
            subtree = restore.run(engine, check_mode=check_mode, want_diff=want_diff, warn=warn)
        except CgroupError:
            if made:
                systemd.run(['systemctl', 'stop', unit])
            raise
        if not exists:
            # the unit's cgroup and its slices exist once the unit does
            unit_heads = set('/'.join(cgroup[:i]) for i in range(1, len(cgroup) + 1))
            subtree['created'] = [c for c in subtree.get('created', []) if c.get('cgroup') not in unit_heads]
        result['changed'] = result['changed'] or subtree['changed']
    result['subtree'] = subtree
    if want_diff:
        before = '\n'.join(before_lines) + '\n' if exists else ''
        after = 'unit %s Delegate=yes slice %s\n' % (unit, slice_name) + '\n'.join(after_lines) + '\n'
        if subtree and subtree.get('diff'):
            before += subtree['diff']['before']
            after += subtree['diff']['after']
        result['diff'] = dict(before=before, after=after)
    return result


def _children_data(data, top_path):
    """The native spec's entries below the top, keyed relative to it (the engine's own reader
    validates them again)."""
    out = {}
    for key, entry in (data.get('cgroups') or {}).items():
        path = sp.split_path(key) if key not in ('', '/') else ()
        if path[:len(top_path) + 1] == top_path + (HOLDER,):
            continue  # as split_spec
        if path != top_path and path[:len(top_path)] == top_path:
            out['/'.join(path[len(top_path):])] = entry
    return out
