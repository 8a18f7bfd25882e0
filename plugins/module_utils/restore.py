# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cgroup_restore's core: read the spec, take the host lock, observe, plan,
apply. Returns the module result or raises a CgroupError."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import gc
import grp
import os
import pwd

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import cgroupfs
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import containers
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import fit
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import hierarchies as hz
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import policy
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import properties
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import report as report_mod
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import spec as sp
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import targets as tg
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import undo_record
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.report import Report, show_mode, show_value
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import (
    ApplyError, Refusal, SpecError)
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.lock import HostLock
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.observe import mount_places, observe
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.plan import make_plan, perms_for, plan_options_of
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.targets import applies_to


def resolve_id(field, name):
    """The uid or gid of a user or group name; None when there is none."""
    try:
        return (pwd.getpwnam(name).pw_uid if field == 'uid' else grp.getgrnam(name).gr_gid)
    except KeyError:
        return None


def id_resolver():
    """resolve_id that looks each name up once: a big spec names the same
    owner thousands of times (a cgconfig perm block per group), and each
    lookup reads /etc/passwd or asks NSS."""
    found = {}

    def resolve(field, name):
        key = (field, name)
        if key not in found:
            found[key] = resolve_id(field, name)
        return found[key]
    return resolve


# The module's parameters, as AnsibleModule checks them (cgroup_restore.py
# passes this on). read_request takes each parameter as it is given, and
# the default from here where it is left out (None): callers other than the
# module (the benchmarks, the tests) give only some. `mode` has no choices:
# policy.parse_mode refuses a combination with a message that says modes
# cannot be combined, which AnsibleModule's choice check would not.
ARGUMENT_SPEC = dict(
    spec=dict(type='dict'),
    src=dict(type='path'),
    specs=dict(type='dict'),
    format=dict(type='str', default='auto', choices=['auto', 'native', 'criu', 'crit_json', 'cgconfig']),
    mode=dict(type='str', default=policy.DEFAULT_MODE),
    restore_properties=dict(type='str', default='all', choices=list(sp.RESTORE_PROPERTIES)),
    mountpoint=dict(type='path', default='/sys/fs/cgroup'),
    root=dict(type='str'),
    roots=dict(type='dict'),
    root_from=dict(type='str'),
    prune=dict(type='bool', default=False),
    lock_timeout=dict(type='int', default=60),
    missing_properties=dict(type='str', default='fail', choices=list(policy.MISSING_PROPERTIES)),
    translate=dict(type='str', default='auto', choices=['auto', 'never']),
    translate_unmappable=dict(type='str', default='fail', choices=['fail', 'skip']),
    fit_destination=dict(type='str', default='refuse', choices=list(fit.POLICIES)),
    root_controllers=dict(type='list', elements='str'),
    allow_systemd_managed=dict(type='bool', default=False),
    report=dict(type='str', default='full', choices=list(report_mod.CHOICES)),
)


def given(params, name):
    """A parameter as the caller gave it; its default (ARGUMENT_SPEC) only
    when it is left out. An empty text or a zero is a value, not a request
    for the default: mode "" is no mode, lock_timeout 0 means do not wait."""
    value = params.get(name)
    return ARGUMENT_SPEC[name].get('default') if value is None else value


def _choice(params, name):
    """A parameter with choices, checked here too: callers other than the
    module skip AnsibleModule's check."""
    value = given(params, name)
    choices = ARGUMENT_SPEC[name]['choices']
    if value not in choices:
        raise SpecError('Invalid %s %r: choose one of %s.' % (name, value, ', '.join(choices)))
    return value


def lock_timeout(params):
    """Seconds to wait for the host lock: 0 is not at all."""
    value = given(params, 'lock_timeout')
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise SpecError('Invalid lock_timeout %r: give the seconds to wait for the host lock, 0 for not at all.'
                        % (value,))
    return value


# Where the spec comes from: exactly one of these (the module's
# mutually_exclusive and required_one_of say the same to AnsibleModule).
SPEC_SOURCES = ('spec', 'src', 'specs')


def read_request(params, warn=None):
    """Validate the module's parameters into (spec, options)."""
    mode = policy.parse_mode(given(params, 'mode'))
    if given(params, 'prune'):
        policy.check_prune(policy.mode(mode))
    mountpoint = given(params, 'mountpoint')
    if not isinstance(mountpoint, str) or not mountpoint.startswith('/'):
        raise SpecError('Invalid mountpoint %r: give the absolute path where the hierarchies are mounted.'
                        % (mountpoint,))
    restore_properties = _choice(params, 'restore_properties')
    missing_properties = _choice(params, 'missing_properties')
    translate = _choice(params, 'translate')
    unmappable = _choice(params, 'translate_unmappable')
    lock_timeout(params)
    remap = sp.parse_remap(params.get('root'), params.get('roots'), params.get('root_from'))
    spec = _read_spec(params, remap, warn)
    options = sp.Options(
        mode=mode,
        restore_properties=restore_properties,
        prune=bool(given(params, 'prune')),
        remap=remap,
        mountpoint=mountpoint,
        missing_properties=missing_properties,
        allow_systemd_managed=bool(given(params, 'allow_systemd_managed')),
        translate=translate,
        translate_unmappable=unmappable,
        fit_destination=_choice(params, 'fit_destination'),
        report=_choice(params, 'report'))
    return spec, options


def _read_spec(params, remap, warn):
    """The Spec to restore: several containers (specs), one spec inline
    (spec), or a file on the target (src)."""
    sources = [name for name in SPEC_SOURCES if params.get(name) is not None]
    if len(sources) > 1:
        raise SpecError('Invalid options: %s are mutually exclusive; give one of spec, src and specs.'
                        % ' and '.join(sources))
    if params.get('specs') is not None:
        if params.get('root_controllers'):
            raise SpecError('Invalid options: root_controllers restores one container through its own view; '
                            'give it with spec or src, not with specs.')
        return containers.load_specs(params['specs'], remap, resolve=id_resolver())
    data = params.get('spec')
    if data is None:
        if not params.get('src'):
            raise SpecError('Invalid options: give the spec inline (spec), as a file on the target (src), or '
                            'several containers (specs).')
        # imported here: only a spec file needs the format readers (and subprocess)
        from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import formats
        data, notes = formats.load_src(params['src'], given(params, 'format'))
        for note in notes:
            (warn or (lambda message: None))(note)
        if data is formats.NOTHING_TO_RESTORE:
            data = None  # a cgconfig.conf with no group: a run that does nothing (and said why)
    view_root = params.get('root_controllers')
    if view_root and data is not None:
        root_path = sp.split_path(params['root_from'], 'root_from') if params.get('root_from') else ()
        data = sp.with_view_root(data, [c for entry in view_root for c in str(entry).split(',') if c], root_path)
    return sp.load_spec(data, resolve=id_resolver()) if data is not None else sp.Spec(cgroups=())


class _Host:
    """The hierarchies under the mountpoint and safe handles to them."""

    def __init__(self, mountpoint):
        self.mountpoint = mountpoint
        self.handles = {}
        self._destination = None
        self.rediscover()

    def destination(self):
        """The CPUs, nodes, huge page sizes and devices this host has, read once."""
        if self._destination is None:
            self._destination = fit.read_destination()
        return self._destination

    def rediscover(self):
        if not os.path.isdir(self.mountpoint):
            raise Refusal('Failed to restore: mountpoint %s does not exist or is not a directory.' % self.mountpoint)
        self.kernel, self.hierarchies = hz.read_hierarchies(self.mountpoint)

    def open(self, targets):
        for target in targets:
            name = target.hierarchy.name
            if target.planned or name in self.handles:
                continue
            try:
                self.handles[name] = cgroupfs.OpenHierarchy(target.hierarchy.mount_point, target.hierarchy.version)
            except (OSError, cgroupfs.NotCgroupFS) as exc:
                raise Refusal('Failed to open hierarchy %s at %s: %s. Nothing was written.'
                              % (name, target.hierarchy.mount_point, exc))

    def close(self):
        for handle in self.handles.values():
            handle.close()
        self.handles = {}


def _observe_and_plan(host, spec, options):
    targets, planned, notes = tg.resolve(spec, host.hierarchies, host.kernel, tg.placement_of(options))
    targets, fit_notes = fit.fit(targets, host.destination(), options.fit_destination)
    notes = notes + fit_notes
    host.open(targets)
    try:
        observed = observe(targets, host.handles, os.sysconf('SC_PAGE_SIZE'), want_subtrees=options.prune)
        if planned:
            observed = observed._replace(places=mount_places(planned, options.mountpoint, host.hierarchies))
    except (OSError, cgroupfs.NotCgroupFS) as exc:
        raise Refusal('Failed to read the current cgroups: %s. Nothing was written.' % exc)
    plan = make_plan(targets, planned, observed, plan_options_of(options))
    plan.warnings[:0] = notes
    return targets, observed, plan


def run(params, check_mode=False, want_diff=False, warn=None):
    """The module's result for its parameters, or a CgroupError. Python's
    cyclic garbage collector is paused meanwhile: a run builds many small
    objects and no cycles, and the collector's passes over them cost about a
    tenth of a no-op run on a big tree."""
    paused = gc.isenabled()
    gc.disable()
    choice = given(params, 'report')  # checked by read_request, in _run
    try:
        return report_mod.shape(_run(params, check_mode, want_diff, warn), choice)
    except ApplyError as exc:
        report_mod.shape(exc.report, choice)
        raise
    finally:
        if paused:
            gc.enable()


def _run(params, check_mode, want_diff, warn):
    warn = warn or (lambda message: None)
    spec, options = read_request(params, warn)
    with HostLock(lock_timeout(params)) as lock:
        if lock.wait_note():
            warn(lock.wait_note())
        host = _Host(options.mountpoint)
        try:
            targets, observed, plan = _observe_and_plan(host, spec, options)
            for path in plan.skipped_prune:
                warn('Not pruned: %s has tasks.' % path)
            for message in plan.warnings:
                warn(message)
            diff = make_diff(targets, observed, plan.actions) if want_diff else None
            if check_mode:
                for a in plan.actions:
                    if a.kind == 'mount':
                        warn('Check mode cannot look inside hierarchy %s before it is mounted: it reports every '
                             'cgroup there as new; a real run looks again once it is mounted.' % a.hierarchy)
            if check_mode or not plan.actions:
                # Only check mode and a no-op report the prediction; a real run
                # reports what it did (predicting 5,000 writes cost a few % of a run).
                result = predicted_report(plan.actions, observed.page_size)
                if want_diff:
                    result['diff'] = diff
                result.update(changed=bool(plan.actions), mode=options.mode, lock_waited=round(lock.waited, 3),
                              undo=undo_record.empty(options.mountpoint, options.mode))
                return result
            report = _apply(host, spec, options, plan, warn)
        finally:
            host.close()
    report.update(changed=True, mode=options.mode, lock_waited=round(lock.waited, 3))
    if want_diff:
        report['diff'] = diff
    return report


def _apply(host, spec, options, plan, warn):
    # Imported here, not at the top: a no-op run, the most common one on a
    # fleet, never writes, and a module's payload carries source only, which
    # Python's zipimport compiles twice on every import (once to learn the
    # file's name, once to run it).
    from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.apply import Applier

    applier = Applier(host.handles, options.mountpoint, options.mode, options.missing_properties, plan.creator)
    try:
        report = _run_applier(applier, host, spec, options, plan)
    except ApplyError as exc:
        # opport keeps what it applied: its undo record is as useful as after
        # a success (strict and bind rolled back, and their journal is empty)
        exc.report['undo'] = _undo(applier, options)
        raise
    finally:
        for message in applier.warnings:
            warn(message)
    report['undo'] = _undo(applier, options)
    return report


def _undo(applier, options):
    return undo_record.from_journal(applier.journal, options.mountpoint, options.mode, applier.report['mounted'])


def _run_applier(applier, host, spec, options, plan):
    mounts = [a for a in plan.actions if a.kind == 'mount']
    actions = plan.actions
    if mounts:
        # The cgroups inside a hierarchy are visible only once it is mounted:
        # mount, then look again and plan the rest.
        applier.run(mounts)
        try:
            host.rediscover()
            _targets, _observed, replan = _observe_and_plan(host, spec, options)
        except Refusal as exc:
            applier.abort(str(exc))
        actions = [a for a in replan.actions if a.kind != 'mount']
        applier.warnings.extend(m for m in replan.warnings if m not in plan.warnings)
    report = applier.run(actions)
    if report['failed_items']:
        report['changed'] = bool(report['created'] or report['writes'] or report['perms']
                                 or report['removed'] or report['mounted'])
        raise ApplyError('Failed to apply %d item(s) in %s mode; the rest was applied: %s'
                         % (len(report['failed_items']), options.mode,
                            '; '.join(i['error'] for i in report['failed_items'][:5])),
                         report)
    return report


def _expected(prop, canonical, page_size):
    """The value the kernel will read back, as text."""
    return show_value(prop, properties.kind_of(prop).expected(canonical, page_size))


def _owner_after(action):
    """[uid, gid] after a chown, as a real run reads it back: a field the
    spec leaves out keeps its current value, or, in a new cgroup, the
    creator's (the kernel gives a new cgroup's files its fsuid and fsgid)."""
    current = action.before or (os.geteuid(), os.getegid())
    return [current[i] if value is None else value for i, value in enumerate(action.after)]


def predicted_report(actions, page_size):
    """What a run of these actions reports, before it runs (check mode): the
    same builder as a real run's (report.Report), given the values the
    kernel will read back instead of those it read back."""
    report = Report()
    for a in actions:
        if a.kind == 'mount':
            report.mounted(a)
        elif a.kind == 'mkdir':
            report.created(a)
        elif a.kind == 'rmdir':
            report.removed(a)
        elif a.kind == 'write':
            report.wrote(a, _expected(a.prop, a.after, page_size))
        elif a.kind == 'chmod':
            report.chmod(a, a.after)
        elif a.kind == 'chown':
            report.chown(a, _owner_after(a))
    return report.result


def _perm_lines(target, state):
    """{label: text} of the owner and mode fields that the spec names, as the
    kernel shows them now: 'mode', 'uid', 'gid' of the directory and
    '<file> mode' etc. of a file of file_perms."""
    cg = target.cgroup
    entries = [('', perms_for(target, cg.perms), state.perms)]
    entries.extend((name + ' ', perms_for(target, perms, name), state.file_perms.get(name))
                   for name, perms in cg.file_perms if applies_to(name, target.hierarchy))
    lines = {}
    for prefix, perms, current in entries:
        if perms is None or current is None:
            continue
        mode, uid, gid = current
        for field, wanted, now in (('mode', perms.mode, show_mode(mode)), ('uid', perms.uid, uid),
                                   ('gid', perms.gid, gid)):
            if wanted is not None:
                lines[prefix + field] = str(now)
    return lines


def make_diff(targets, observed, actions):
    """A readable tree: sorted lines 'hierarchy:cgroup', 'hierarchy:cgroup
    property = value', the owner and mode fields the spec names
    ('hierarchy:cgroup mode = 0755', 'hierarchy:cgroup cgroup.procs uid = 0')
    and the hierarchies a run mounts, before and after."""
    before_dirs, after_dirs, before_values = set(), set(), {}
    for t in targets:
        if t.planned:
            continue  # not mounted yet: nothing of it can be seen before
        h, path = t.hierarchy.name, t.path
        state = observed.cgroups.get((h, path))
        head = '%s:%s' % (h, sp.show_path(path))
        if path and (state is None or not state.exists):
            continue
        before_dirs.add(head)
        for prop in t.props:
            raw = state.values.get(prop.name) if state is not None else None
            if raw is not None:
                kind = properties.kind_of(prop.name)
                before_values[(head, prop.name)] = kind.show(kind.read(raw))
        if state is not None:
            for label, text in _perm_lines(t, state).items():
                before_values[(head, label)] = text
    after_dirs.update(before_dirs)
    after_values = dict(before_values)
    for a in actions:
        head = '%s:%s' % (a.hierarchy, sp.show_path(a.path))
        prefix = a.prop + ' ' if a.prop else ''
        if a.kind == 'mount':
            after_dirs.add('%s: mounted at %s, options %s' % (a.hierarchy, a.spec_value, a.after))
        elif a.kind == 'mkdir':
            after_dirs.add(head)
        elif a.kind == 'rmdir':
            before_dirs.add(head)
            after_dirs.discard(head)
        elif a.kind == 'write':
            after_values[(head, a.prop)] = _expected(a.prop, a.after, observed.page_size)
        elif a.kind == 'chmod':
            after_values[(head, prefix + 'mode')] = show_mode(a.after)
        elif a.kind == 'chown':
            for field, value in zip(('uid', 'gid'), a.after):
                if value is not None:
                    after_values[(head, prefix + field)] = str(value)

    def render(dirs, values):
        lines = list(dirs) + ['%s %s = %s' % (head, prop, value.replace('\n', ', '))
                              for (head, prop), value in values.items()]
        return '\n'.join(sorted(lines)) + '\n'
    return dict(before=render(before_dirs, before_values), after=render(after_dirs, after_values))
