"""Runs inside a sandbox (a private mount namespace): drives the restore
engine in-process for campaigns that need thousands of calls or a fault
injected through the apply layer's seam. Reads a JSON job from argv[1] and
prints a JSON summary. The sandbox is read with plain os calls (an
independent reader), never through the engine."""

import errno
import json
import os
import sys

from compared import COMPARED_FILES
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import restore
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


def count_actions(params):
    spec, options = restore.read_request(params)
    host = restore._Host(options.mountpoint)  # pylint: disable=protected-access
    try:
        return len(restore._observe_and_plan(host, spec, options)[2].actions)  # pylint: disable=protected-access
    finally:
        host.close()


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


def reset(baseline_dirs, baseline):
    """Put the sandbox back as the baseline had it, with plain os calls."""
    for hierarchy in sorted(os.listdir(ROOT)):
        top = os.path.join(ROOT, hierarchy)
        if not os.path.isdir(top):
            continue
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda item: -item[0].count('/')):
            if os.path.relpath(dirpath, ROOT) not in baseline_dirs:
                os.rmdir(dirpath)
    for rel, entry in sorted(baseline.items(), key=lambda item: item[0].count('/')):
        path = os.path.join(ROOT, rel)
        if not os.path.isdir(path):
            os.mkdir(path)  # pruned by a case whose spec names the root
        os.chmod(path, entry['perms'][0])
        os.chown(path, entry['perms'][1], entry['perms'][2])
        for name, value in entry.items():
            if name.startswith('perms:'):
                os.chmod(os.path.join(path, name[6:]), value[0])
                os.chown(os.path.join(path, name[6:]), value[1], value[2])
            elif name != 'perms' and name not in ('devices.list', 'memory.memsw.limit_in_bytes'):
                with open(os.path.join(path, name), 'w') as handle:
                    handle.write(value.strip() or '\n')


def fault_at(step, moving_pid=None):
    def hook(number, action):
        if number == step:
            if moving_pid is not None:
                # A task appears in the cgroups this call created: rollback's
                # rmdir meets EBUSY.
                for dirpath, _dirs, _files in os.walk(ROOT):
                    if dirpath.endswith('/ct/leaf'):
                        with open(os.path.join(dirpath, 'cgroup.procs'), 'w') as handle:
                            handle.write(str(moving_pid))
            raise OSError(errno.EIO, 'injected fault at step %d (%s)' % (number, action.kind))
    return hook


def campaign(job):
    """Make step k fail for every k; strict/bind: the sandbox is as before;
    opport: exactly the failed item is reported, the rest applied."""
    params = job['params']
    total = count_actions(params)
    baseline = snapshot()
    baseline_dirs = set(baseline)
    results = []
    for step in range(1, total + 1):
        Applier.fault_hook = staticmethod(fault_at(step))
        outcome, report = run(params)
        Applier.fault_hook = None
        entry = {'step': step, 'outcome': outcome}
        if params.get('mode') in ('strict', 'bind', None):
            entry['diff'] = differences(baseline, snapshot())
            entry['ok'] = outcome == 'failed' and not entry['diff'] and not report.get('rollback_errors')
        else:
            failed = report.get('failed_items', [])
            entry['failed_items'] = [(f['hierarchy'], f['cgroup'], f['property'], f['error'][:90]) for f in failed]
            injected = [f for f in failed if 'injected fault at step %d' % step in f['error']]
            # a clean re-run must touch exactly what was reported failed or skipped
            _outcome, again = run(params)
            reported = set((f['hierarchy'], f['cgroup']) for f in failed)
            redone = set((w['hierarchy'], w['cgroup']) for w in again.get('writes', []) + again.get('created', [])
                         + again.get('perms', []))
            entry['redone_outside_failed'] = sorted('%s:%s' % r for r in redone - reported)
            entry['ok'] = (outcome == 'failed' and len(injected) == 1 and not entry['redone_outside_failed']
                           and again.get('failed_items') == [])
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
        Applier.fault_hook = staticmethod(fault_at(job['step'], moving_pid=pid))
        outcome, report = run(params)
        Applier.fault_hook = None
        return {'outcome': outcome, 'msg': report.get('msg'), 'rollback_errors': report.get('rollback_errors')}
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def fuzz(job):
    """Generated arguments through the engine: every outcome is a success or
    one clear CgroupError, never another exception; nothing outside the
    spec's cgroups changes (a canary tree must stay as it was)."""
    from hypothesis import HealthCheck, given, settings
    from fuzz_cases import ARGUMENTS

    canary = os.path.join(ROOT, 'memory', 'canary')
    baseline = snapshot()
    baseline_dirs = set(baseline)
    tally = {'cases': 0, 'ok': 0, 'refused': 0, 'failed': 0}
    problems = []

    @settings(max_examples=job['cases'], database=None, deadline=None, derandomize=job.get('derandomize', True),
              suppress_health_check=list(HealthCheck))
    @given(ARGUMENTS)
    def case(params):
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
        changed = [k for k in differences(baseline, after) if k.startswith('memory/canary')]
        cgroups = (params.get('spec') or {}).get('cgroups') if isinstance(params.get('spec'), dict) else None
        # prune below the root ('/') may remove the empty canary: that is inside the spec
        prunes_root = params.get('prune') and isinstance(cgroups, dict) and any(
            isinstance(k, str) and k.strip('/') == '' and k for k in cgroups)
        if (changed or not os.path.isdir(canary)) and not prunes_root:
            problems.append('canary changed: %s with %r' % (changed, params))
        reset(baseline_dirs, baseline)

    case()
    return {'tally': tally, 'problems': problems[:20], 'problem_count': len(problems)}


def race(job):
    """A cgroup of the spec is removed between observe and apply."""
    victim = os.path.join(ROOT, job['victim'])

    def hook(number, action):
        if number == 1:
            os.rmdir(victim)
    Applier.fault_hook = staticmethod(hook)
    before = snapshot()
    outcome, report = run(job['params'])
    Applier.fault_hook = None
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
