"""Runs inside a sandbox (a private mount namespace): drives the restore
engine in-process for campaigns that need thousands of calls or a fault
injected through the apply layer's seam. Reads a JSON job from argv[1] and
prints a JSON summary. The sandbox is read with plain os calls (an
independent reader), never through the engine.

It calls the engine only through its public entry points (restore.run,
restore.read_request, targets.resolve) and the fault seam
(Applier.fault_hook, set by fault_hook() for one block). What stays here,
and why, rather than in the module tests:
- in-process runs: a campaign makes a step fail for each of 30+ steps, the
  fuzz job makes hundreds of calls; a module process per call is slow, and
  a fault can only be injected inside the process;
- snapshot() and reset(): the independent reader and writer of the sandbox
  (plain os calls), so the engine is never judged by itself;
- allowed_cgroups(): where the spec's cgroups land after the root remap,
  which the fuzz job must know to tell a change inside the spec from one
  outside it; the engine's own resolver says so (targets.resolve);
- call(): the module's result shape for the v2 tests in the VM, where
  starting a module process per call is slower still."""

import contextlib
import errno
import json
import os
import sys
import time

from compared import COMPARED_FILES, setting_differences
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import hierarchies as hz
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import observe
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import restore
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import targets as tg
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import undo
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.apply import Applier
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import ApplyError, CgroupError

ROOT = '/sys/fs/cgroup'


def snapshot():
    """Every cgroup in the view with owner, mode and settings."""
    state = {}
    for hierarchy in sorted(os.listdir(ROOT)):
        top = os.path.join(ROOT, hierarchy)
        if os.path.islink(top) or not os.path.isdir(top):
            continue
        for dirpath, _dirs, files in os.walk(top):
            st = os.stat(dirpath)
            entry = {'perms': [st.st_mode & 0o7777, st.st_uid, st.st_gid]}
            for name in sorted(files):
                fst = os.stat(os.path.join(dirpath, name))
                entry['perms:' + name] = [fst.st_mode & 0o7777, fst.st_uid, fst.st_gid]
                if name in COMPARED_FILES:
                    with open(os.path.join(dirpath, name)) as handle:
                        entry[name] = handle.read()
            state[os.path.relpath(dirpath, ROOT)] = entry
    return state


def differences(before, after):
    keys = sorted(set(before) | set(after))
    return [k for k in keys if before.get(k) != after.get(k)]


@contextlib.contextmanager
def fault_hook(hook):
    """Applier's fault seam set to hook (called with the step number and the
    action before each step) for one block, and cleared however the block
    ends: a hook left behind would fail every later call of the job."""
    Applier.fault_hook = staticmethod(hook)
    try:
        yield
    finally:
        Applier.fault_hook = None


def clean_run(params):
    """A run with no fault: its outcome and report, and the actions of its
    steps in the order the applier numbers them (what a fault_at can hit)."""
    steps = []
    with fault_hook(lambda number, action: steps.append(action)):
        outcome, report = run(params)
    return outcome, report, steps


def run(params, check_mode=False, warn=None):
    try:
        return 'ok', restore.run(params, check_mode=check_mode, want_diff=True, warn=warn)
    except ApplyError as exc:
        return 'failed', dict(exc.report, msg=str(exc))
    except CgroupError as exc:
        return 'refused', {'msg': str(exc)}


def call(job):
    """One restore, shaped like the module's result (failed, msg, warnings):
    the engine without a module process, where starting Python is slow (the VM)."""
    warnings = []
    outcome, report = run(job['params'], job.get('check_mode', False), warnings.append)
    result = dict(report, failed=outcome != 'ok', warnings=warnings)
    result.setdefault('changed', False)
    return result


# Files reset never writes: task lists are not settings.
NOT_RESET = ('tasks', 'cgroup.procs')


def _read(path):
    with open(path) as handle:
        return handle.read()


def reset(baseline_dirs, baseline):
    """Put the sandbox back as the baseline had it, with plain os calls."""
    for hierarchy in sorted(os.listdir(ROOT)):
        top = os.path.join(ROOT, hierarchy)
        if not os.path.isdir(top):
            continue
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda item: -item[0].count('/')):
            if os.path.relpath(dirpath, ROOT) not in baseline_dirs:
                os.rmdir(dirpath)
    by_depth = sorted(baseline, key=lambda rel: rel.count('/'))
    missing = [rel for rel in by_depth if not os.path.isdir(os.path.join(ROOT, rel))]
    # Settings before mkdir: a root left with a tiny memory limit refuses
    # the mkdir of a pruned cgroup (ENOMEM).
    _reset_settings([(rel, baseline[rel]) for rel in by_depth if rel not in missing])
    for rel in missing:
        os.mkdir(os.path.join(ROOT, rel))  # pruned by a case whose spec names the root
    _reset_settings([(rel, baseline[rel]) for rel in missing])


def _reset_settings(entries):
    pending = []
    for rel, entry in entries:
        path = os.path.join(ROOT, rel)
        os.chmod(path, entry['perms'][0])
        os.chown(path, entry['perms'][1], entry['perms'][2])
        for name, value in entry.items():
            if name.startswith('perms:'):
                os.chmod(os.path.join(path, name[6:]), value[0])
                os.chown(os.path.join(path, name[6:]), value[1], value[2])
            elif name != 'perms' and name not in NOT_RESET and _read(os.path.join(path, name)) != value:
                if name == 'devices.list':
                    # devices.list is read-only: deny all, then allow line by
                    # line, as one group that is retried as a whole
                    lines = ['a' if line == 'a *:* rwm' else line for line in value.split('\n') if line]
                    pending.append([(os.path.join(path, 'devices.deny'), 'a')] +
                                   [(os.path.join(path, 'devices.allow'), line) for line in lines])
                    continue
                if name == 'memory.oom_control':
                    value = value.split()[1]  # only oom_kill_disable is writable
                pending.append([(os.path.join(path, name), value.strip() or '\n')])
    # Some writes depend on others (memsw and the limit, a parent's cpuset or
    # quota and its child's), and the kernel takes a moment to let a removed
    # child go (deny-all is refused while it is still online): later passes
    # write again the groups that an earlier one refused.
    for attempt in range(300):
        time.sleep(0.01 if attempt else 0)
        refused = []
        for group in pending:
            try:
                for path, text in group:
                    with open(path, 'w') as handle:
                        handle.write(text)
            except OSError as exc:
                refused.append((group, path, text, exc))
        pending = [group for group, _path, _text, _exc in refused]
        if not pending:
            return
    _group, path, text, exc = refused[0]
    raise OSError(exc.errno, 'reset: writing %r to %s: %s' % (text, path, exc.strerror))


def allowed_cgroups(params):
    """Snapshot keys ('memory/r1/ct') of the spec's cgroups after the root
    remap, with their ancestors: the only cgroups a call may change. Worked
    out by the module_utils spec reader and target resolver; empty when they
    refuse the request (then nothing may change at all). Also the spec's
    cgroups themselves, below which prune may remove cgroups."""
    try:
        spec, options = restore.read_request(params)
        kernel, hierarchies = hz.read_hierarchies(options.mountpoint)
        targets = tg.resolve(spec, hierarchies, kernel, tg.placement_of(options)).targets
    except CgroupError:
        return set(), set()
    allowed, named = set(), set()
    for target in targets:
        top = target.hierarchy.mount_point
        named.add(os.path.relpath(os.path.join(top, *target.path), ROOT))
        for depth in range(len(target.path) + 1):
            # a hierarchy the call mounts is new as a whole: its root may appear
            if depth or not target.path or target.planned:
                allowed.add(os.path.relpath(os.path.join(top, *target.path[:depth]), ROOT))
    return allowed, named


def outside_spec(before, after, params, allowed, named):
    """The differences between two listings that lie outside the spec's
    cgroups (removals below them are allowed with prune)."""
    outside = []
    for key in differences(before, after):
        if key in allowed:
            continue
        pruned = params.get('prune') and key in before and key not in after and \
            any(key.startswith(top + '/') for top in named)
        if not pruned:
            outside.append(key)
    return outside


def fault_at(step, moving_pid=None, seen=None):
    """A fault hook failing step `step`; `seen` gets the failed action."""
    def hook(number, action):
        if number == step:
            if seen is not None:
                seen.append(action)
            if moving_pid is not None:
                # A task appears in the cgroups this call created: rollback's
                # rmdir meets EBUSY.
                for dirpath, _dirs, _files in os.walk(ROOT):
                    if dirpath.endswith('/ct/leaf'):
                        with open(os.path.join(dirpath, 'cgroup.procs'), 'w') as handle:
                            handle.write(str(moving_pid))
            raise OSError(errno.EIO, 'injected fault at step %d (%s)' % (number, action.kind))
    return hook


def item_setting(item, dirs, listing):
    """The (cgroup key, setting) that a reported failed item leaves undone,
    named as in the listing: a cgroup that is not there is (key, 'cgroup')."""
    top = dirs[item['hierarchy']]
    key = top if item['cgroup'] == '/' else top + '/' + item['cgroup']
    if key not in listing or item['action'] == 'mkdir':
        return (key, 'cgroup')
    if item['action'] in ('chmod', 'chown'):
        return (key, 'perms:' + item['property'] if item['property'] else 'perms')
    return (key, item['property'])


def campaign(job):
    """Make step k fail for every k; strict/bind: the sandbox is as before;
    opport: the reported failed items are exactly the settings that differ
    from a clean run's, property by property, in the independent listing."""
    params = job['params']
    baseline = snapshot()
    baseline_dirs = set(baseline)
    opport = params.get('mode') == 'opport'
    dirs = dict((h.name, os.path.relpath(h.mount_point, ROOT)) for h in hz.read_hierarchies(ROOT)[1])
    # A clean run first: how many steps there are to fail, and, for opport,
    # the settings a run leaves.
    outcome, report, steps = clean_run(params)
    assert outcome == 'ok', report
    clean = snapshot()
    # reset() puts back the sandbox's own cgroups, but not what a run enabled
    # in cgroup.subtree_control above them (cgroup v2): a later run would then
    # take fewer steps than counted. The run's own undo record puts back all.
    undo.run({'undo': report['undo']})
    reset(baseline_dirs, baseline)
    total = len(steps)
    results = []
    for step in range(1, total + 1):
        seen = []
        with fault_hook(fault_at(step, seen=seen)):
            outcome, report = run(params)
        entry = {'step': step, 'outcome': outcome}
        if not opport:
            entry['diff'] = differences(baseline, snapshot())
            entry['ok'] = outcome == 'failed' and not entry['diff'] and not report.get('rollback_errors')
        else:
            got = snapshot()
            failed = report.get('failed_items', [])
            reported = set(item_setting(f, dirs, got) for f in failed)
            undone = setting_differences(clean, got)
            entry['failed_items'] = [(f['hierarchy'], f['cgroup'], f['property'], f['error'][:90]) for f in failed]
            entry['unreported'] = sorted(undone - reported)
            entry['settings_undone'] = len(undone)
            # A setting that an earlier step of the same call already wrote
            # (the plan writes a new cpuset's cpus twice) may fail unseen.
            applied = set(item_setting(dict(w, action='write'), dirs, got) for w in report.get('writes', []))
            entry['reported_but_applied'] = sorted(reported - undone - applied)
            entry['failed_after_applied'] = len((reported - undone) & applied)
            action = seen[0]
            injected = [f for f in failed if 'injected fault at step %d' % step in f['error']]
            entry['injected_reported'] = [(f['hierarchy'], f['cgroup'], f['property']) for f in injected] == [
                (action.hierarchy, '/'.join(action.path) or '/', action.prop)]
            # One item per setting: two plan steps on one setting below a
            # cgroup that could not be created are one skipped item.
            items = [tuple(sorted(f.items())) for f in failed]
            entry['duplicates'] = len(items) - len(set(items))
            entry['duplicate_skips'] = len([f for f in failed if f['error'].startswith('skipped:')]) - len(
                set(i for i, f in zip(items, failed) if f['error'].startswith('skipped:')))
            # a clean re-run changes only settings that were reported failed
            again, _report = run(params)
            entry['rerun_changed_unreported'] = sorted(setting_differences(got, snapshot()) - reported)
            entry['ok'] = (outcome == 'failed' and entry['injected_reported'] and not entry['unreported']
                           and not entry['reported_but_applied'] and entry['duplicates'] == 0
                           and again == 'ok' and not entry['rerun_changed_unreported'])
        results.append(entry)
        reset(baseline_dirs, baseline)
        if differences(baseline, snapshot()):
            entry['ok'] = False
            entry['reset_failed'] = True
    return {'actions': total, 'results': results}


def rollback_busy(job):
    """A task lands in a created cgroup before the fault: rollback's rmdir is
    refused with EBUSY, retried, and reported."""
    params = job['params']
    pid = os.fork()
    if pid == 0:
        os.execvp('sleep', ['sleep', '60'])
    try:
        with fault_hook(fault_at(job['step'], moving_pid=pid)):
            start = time.time()
            outcome, report = run(params)
            seconds = time.time() - start
        return {'outcome': outcome, 'msg': report.get('msg'), 'rollback_errors': report.get('rollback_errors'),
                'seconds': seconds}
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def fuzz(job):
    """Generated arguments through the engine: every outcome is a success or
    one clear CgroupError, never another exception. Nothing outside the
    spec's cgroups (after the root remap) and their ancestors changes, in a
    full listing of the sandbox; a refusal changes nothing at all; and a
    canary tree outside every spec stays as it was."""
    from hypothesis import HealthCheck, given, settings
    from fuzz_cases import ARGUMENTS, CATEGORIES, categories

    canary = os.path.join(ROOT, 'memory', 'canary')
    baseline = snapshot()
    baseline_dirs = set(baseline)
    tally = {'cases': 0, 'ok': 0, 'refused': 0, 'failed': 0, 'rollback_errors': 0}
    hits = dict((name, 0) for name in CATEGORIES)
    problems = []
    rollback_errors = []

    @settings(max_examples=job['cases'], database=None, deadline=None, derandomize=job.get('derandomize', True),
              suppress_health_check=list(HealthCheck))
    @given(ARGUMENTS)
    def case(params):
        for name in categories(params):
            hits[name] += 1
        params = dict(params, lock_timeout=5, mountpoint=ROOT)
        tally['cases'] += 1
        try:
            outcome, report = run(params)
        except Exception as exc:  # pylint: disable=broad-except
            problems.append('%s: %r with %r' % (type(exc).__name__, exc, params))
            return
        tally[outcome] += 1
        msg = report.get('msg', '')
        if outcome != 'ok' and (not msg or 'Traceback' in msg or '\n' in msg.strip()):
            problems.append('unclear message %r for %r' % (msg, params))
        after = snapshot()
        changed = differences(baseline, after)
        if outcome == 'refused' and changed:
            problems.append('refused, yet changed %s: %r with %r' % (changed, msg, params))
        if report.get('rollback_errors'):
            tally['rollback_errors'] += 1
            rollback_errors.extend(report['rollback_errors'])
        elif outcome == 'failed' and 'opport' not in str(params.get('mode')) and changed:
            # strict and bind roll back: what is left must be reported
            problems.append('rolled back, yet changed %s: %r with %r' % (changed, msg, params))
        allowed, named = allowed_cgroups(params)
        outside = outside_spec(baseline, after, params, allowed, named)
        if outside:
            problems.append('changed outside the spec: %s with %r' % (outside, params))
        # The canary is outside every spec unless the remap puts a spec
        # cgroup there, or prune works below a spec cgroup above it.
        in_spec = any(k == 'memory/canary' or k.startswith('memory/canary/') for k in allowed) or (
            params.get('prune') and any('memory/canary'.startswith(top + '/') for top in named))
        canary_changed = [k for k in changed if k.startswith('memory/canary')]
        if (canary_changed or not os.path.isdir(canary)) and not in_spec:
            problems.append('canary changed: %s with %r' % (canary_changed, params))
        if changed:
            reset(baseline_dirs, baseline)
            left = differences(baseline, snapshot())
            if left:
                # a later case would be judged against a wrong baseline
                problems.append('reset left %s after %r' % (left, params))

    case()
    return {'tally': tally, 'categories': hits, 'problems': problems[:20], 'problem_count': len(problems),
            'rollback_errors': rollback_errors[:10]}


def inject(job):
    """An errno (job['errno'], e.g. 'ENOENT') raised through the seam at every
    write of job['prop']: the message the kernel's refusal would give."""
    code = getattr(errno, job['errno'])

    def hook(number, action):
        if action.kind == 'write' and action.prop == job['prop']:
            raise OSError(code, os.strerror(code))
    before = snapshot()
    warnings = []
    with fault_hook(hook):
        outcome, report = run(job['params'], warn=warnings.append)
    return {'outcome': outcome, 'msg': report.get('msg'), 'failed_items': report.get('failed_items'),
            'created': report.get('created'), 'warnings': warnings, 'diff': differences(before, snapshot())}


def foreign_creator(job):
    """A restore whose observer takes new cgroups to be owned by
    job['creator'], which the kernel does not give them."""
    real = observe.creator
    observe.creator = lambda: tuple(job['creator'])
    try:
        before = snapshot()
        outcome, report = run(job['params'])
        return {'outcome': outcome, 'msg': report.get('msg'), 'diff': differences(before, snapshot())}
    finally:
        observe.creator = real


def race(job):
    """A cgroup of the spec is removed between observe and apply."""
    victim = os.path.join(ROOT, job['victim'])

    def hook(number, action):
        if number == 1:
            os.rmdir(victim)
    before = snapshot()
    with fault_hook(hook):
        outcome, report = run(job['params'])
    after = snapshot()
    return {'outcome': outcome, 'msg': report.get('msg'), 'failed_items': report.get('failed_items'),
            'diff': differences(before, after)}


def main():
    with open(sys.argv[1]) as handle:
        job = json.load(handle)
    result = globals()[job['kind']](job)
    print(json.dumps(result))


if __name__ == '__main__':
    main()
