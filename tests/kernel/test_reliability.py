"""Hostile environments, concurrency, limits the kernel really enforces after
a restore, kernel refusals with useful messages, systemd-owned cgroups and
properties the host lacks."""

import os
import signal
import subprocess
import sys
import time

import pytest

from engine_run import run_engine
from modrun import at_once, read, run, run_calls, snapshot

JOIN = ('import os, sys\n'
        'for path in sys.argv[1:]:\n'
        '    with open(path, "w") as handle:\n'
        '        handle.write(str(os.getpid()))\n')


def _in_cgroup(sandbox, code, *cgroups, **kwargs):
    """Start python running `code` after joining the given (hierarchy, path) cgroups."""
    procs = [os.path.join(sandbox.path(h, *p.split('/')), 'cgroup.procs') for h, p in cgroups]
    return subprocess.Popen([sys.executable, '-c', JOIN + code] + procs, **kwargs)


# -- hostile environment -------------------------------------------------------

def test_read_only_cgroup_mount_is_refused(sandbox):
    before = snapshot(sandbox)
    result = run(sandbox, extra='mount -o remount,bind,ro /sys/fs/cgroup/memory',
                 spec={'version': 1, 'cgroups': {'ct': {'memory.limit_in_bytes': '1G'}}}, mode='opport')
    assert result['failed'] and 'read-only' in result['msg'] and 'memory' in result['msg'], result
    assert snapshot(sandbox) == before


@pytest.mark.parametrize('mode', ['strict', 'bind', 'opport'])
def test_cgroup_removed_between_observe_and_apply(sandbox, mode):
    os.makedirs(sandbox.path('pids', 'ct', 'gone'))
    spec = {'version': 1, 'cgroups': {'ct': {'pids.max': 9}, 'ct/gone': {'pids.max': 3}, 'ct/new': {'pids.max': 2}}}
    params = {'spec': spec, 'mode': mode}
    if mode == 'strict':
        params = {'spec': {'version': 1, 'cgroups': {'x': {'pids.max': 4}, 'x/y': {'pids.max': 1}}}, 'root': 'ct/gone'}
    result = run_engine(sandbox, {'kind': 'race', 'victim': 'pids/ct/gone', 'params': params})
    assert result['outcome'] == 'failed', result
    assert 'disappeared' in result['msg'] or 'disappeared' in str(result['failed_items']), result
    if mode != 'opport':
        # rolled back: the only difference is the cgroup the race removed
        assert result['diff'] == ['pids/ct/gone'], result


# -- concurrency ----------------------------------------------------------------

def _spec(n, limit='64M'):
    return {'version': 1, 'cgroups': {'ct%d' % n: {'pids.max': 10 + n, 'memory.limit_in_bytes': limit},
                                      'ct%d/a' % n: {'pids.max': n + 1, 'cpu.shares': 100 + n}}}


def test_eight_identical_restores_at_once(sandbox):
    results = at_once(8, lambda i: run_calls(sandbox, [(dict(spec=_spec(1)), False, False)])[0], sandbox,
                      waiting=True)
    assert all(not r.get('failed') for r in results), results
    assert sum(1 for r in results if r['changed']) == 1  # exactly one did the work
    assert all(r['lock_waited'] > 0 for r in results)  # all 8 started while the lock was held
    assert read(sandbox, 'pids', 'ct1', 'a', 'pids.max') == '2'
    assert read(sandbox, 'cpu', 'ct1', 'a', 'cpu.shares') == '101'


def test_eight_different_restores_at_once(sandbox):
    results = at_once(8, lambda i: run_calls(sandbox, [(dict(spec=_spec(i)), False, False)])[0])
    assert all(r['changed'] and not r.get('failed') for r in results), results
    for i in range(8):
        assert read(sandbox, 'pids', 'ct%d' % i, 'pids.max') == str(10 + i)
        assert read(sandbox, 'cpu', 'ct%d' % i, 'a', 'cpu.shares') == str(100 + i)


# -- limits the kernel enforces -------------------------------------------------

def test_pids_max_stops_forks(sandbox):
    assert not run(sandbox, spec={'version': 1, 'cgroups': {'ct': {'pids.max': 5}}}).get('failed')
    code = ('import os, time\nkids = []\n'
            'for _ in range(20):\n'
            '    try:\n        pid = os.fork()\n    except OSError:\n        break\n'
            '    if pid == 0:\n        time.sleep(30)\n        os._exit(0)\n    kids.append(pid)\n'
            'print(len(kids))\n'
            'for pid in kids:\n    os.kill(pid, 9)\n    os.waitpid(pid, 0)\n')
    proc = _in_cgroup(sandbox, code, ('pids', 'ct'), stdout=subprocess.PIPE, universal_newlines=True)
    out, _err = proc.communicate(timeout=60)
    assert int(out) == 4  # the process itself is the fifth
    assert int(read(sandbox, 'pids', 'ct', 'pids.events').split()[1]) >= 1


def test_memory_limit_holds_a_hog(sandbox):
    if not os.path.exists(sandbox.path('memory', 'memory.memsw.limit_in_bytes')):
        # without memsw the hog could go to swap instead of meeting the limit
        pytest.skip('swap accounting is off on this kernel (no memory.memsw.limit_in_bytes)')
    spec = {'version': 1, 'cgroups': {'ct': {'memory.limit_in_bytes': '64M', 'memory.memsw.limit_in_bytes': '64M'}}}
    assert not run(sandbox, spec=spec).get('failed')
    code = 'blocks = []\nfor _ in range(64):\n    blocks.append(bytearray(8 << 20))\nprint("survived")\n'
    proc = _in_cgroup(sandbox, code, ('memory', 'ct'), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                      universal_newlines=True)
    out, _err = proc.communicate(timeout=120)
    assert 'survived' not in out
    assert proc.returncode in (-signal.SIGKILL, 1), proc.returncode  # OOM-killed, or MemoryError
    oom = dict(line.split() for line in read(sandbox, 'memory', 'ct', 'memory.oom_control').splitlines())
    assert proc.returncode == 1 or int(oom['oom_kill']) >= 1, oom  # the kernel's OOM killer, in this cgroup
    assert int(read(sandbox, 'memory', 'ct', 'memory.max_usage_in_bytes')) <= 64 << 20


def test_cfs_quota_caps_a_busy_loop(sandbox):
    # A busy loop in ct (20% quota) and, at the same time, a control loop in
    # a sibling without quota: what the control gets is what this machine,
    # however loaded, gives a busy loop.
    spec = {'version': 1, 'cgroups': {'ct': {'cpu.cfs_period_us': 100000, 'cpu.cfs_quota_us': 20000},
                                      'free': {'cpu.cfs_quota_us': -1}}}
    assert not run(sandbox, spec=spec).get('failed')
    code = ('import os, time\nend = time.time() + 2\n'
            'while time.time() < end:\n    pass\n'
            't = os.times()\nprint(t.user + t.system)\n')
    capped = _in_cgroup(sandbox, code, ('cpu', 'ct'), stdout=subprocess.PIPE, universal_newlines=True)
    control = _in_cgroup(sandbox, code, ('cpu', 'free'), stdout=subprocess.PIPE, universal_newlines=True)
    share = float(capped.communicate(timeout=60)[0]) / 2.0
    free = float(control.communicate(timeout=60)[0]) / 2.0
    print('busy loop CPU share under a 20%% quota: %.3f (a loop without quota beside it: %.3f)' % (share, free))
    assert share <= 0.30, share
    stat = dict(line.split() for line in read(sandbox, 'cpu', 'ct', 'cpu.stat').splitlines())
    assert int(stat['nr_periods']) > 0, stat  # the quota was in force while the loop ran
    if free >= 0.3:
        # The machine gave a loop more than the quota allows: the capped loop
        # reached its quota, was throttled, and got at least half of it (a
        # quota written ten times too small would give it 0.02).
        assert int(stat['nr_throttled']) > 0, stat
        assert share >= 0.10, (share, free)
    # Below that the machine itself held both loops under the quota (CI saw
    # 0.005 and 0.005, then 0.07 and 0.145, with two VMs booting beside the
    # tests): the quota could not bind, and the loops share what there was.


# -- kernel refusals with useful messages ----------------------------------------

@pytest.mark.parametrize('mode', ['bind', 'opport'])
def test_lowering_memory_below_usage_names_the_usage(sandbox, mode):
    # Not strict: strict never adopts an existing cgroup, and a cgroup it
    # creates has no usage yet.
    assert not run(sandbox, spec={'version': 1, 'cgroups': {'ct': {'memory.limit_in_bytes': '512M'}}}).get('failed')
    ready = os.path.join(sandbox.work, 'ready')
    code = ('import time\nblock = bytearray(100 << 20)\nfor i in range(0, len(block), 4096):\n    block[i] = 1\n'
            'open(%r, "w").close()\ntime.sleep(60)\n' % ready)
    proc = _in_cgroup(sandbox, code, ('memory', 'ct'))
    try:
        deadline = time.time() + 30
        while not os.path.exists(ready) and time.time() < deadline:
            time.sleep(0.1)
        before = snapshot(sandbox)
        spec = {'version': 1, 'cgroups': {
            'ct': {'memory.limit_in_bytes': '10M', 'memory.soft_limit_in_bytes': '8M'},
            'ct/sub': {'memory.limit_in_bytes': '5M', 'memory.soft_limit_in_bytes': '4M'}}}
        result = run(sandbox, spec=spec, mode=mode)
        assert result['failed'] and 'EBUSY' in result['msg'] and 'memory.usage_in_bytes = ' in result['msg'], result
        assert "memory:ct memory.limit_in_bytes" in result['msg']
        after = snapshot(sandbox)
        if mode == 'bind':
            assert after == before  # rolled back: every cgroup, setting, owner and mode
        else:
            # exactly that item failed, and the rest was applied
            assert [(i['hierarchy'], i['cgroup'], i['property']) for i in result['failed_items']] == \
                [('memory', 'ct', 'memory.limit_in_bytes')], result
            changed = set((key, name) for key in after for name in after[key]
                          if key not in before or before[key].get(name) != after[key][name])
            assert set(k for k, _n in changed) == {'memory:ct', 'memory:ct/sub'}, changed
            assert set(n for k, n in changed if k == 'memory:ct') == {'memory.soft_limit_in_bytes'}, changed
            assert set(before) - set(after) == set()
            assert after['memory:ct']['memory.limit_in_bytes'].strip() == str(512 << 20)
            assert after['memory:ct']['memory.soft_limit_in_bytes'].strip() == str(8 << 20)
            assert after['memory:ct/sub']['memory.limit_in_bytes'].strip() == str(5 << 20)
            assert after['memory:ct/sub']['memory.soft_limit_in_bytes'].strip() == str(4 << 20)
    finally:
        proc.kill()
        proc.wait()


def test_memsw_enoent_at_apply_names_cgroup_property_and_remedy(sandbox):
    # With swap accounting off the kernel has no memsw file: ENOENT on the
    # write. Injected through the apply seam at the write, in a cgroup this
    # call creates, so the planner has already passed it.
    if not os.path.exists(sandbox.path('memory', 'memory.memsw.limit_in_bytes')):
        pytest.skip('swap accounting is off on this kernel: memsw is refused at plan time, never at apply')
    spec = {'version': 1, 'cgroups': {'ct': {'memory.limit_in_bytes': '64M', 'memory.memsw.limit_in_bytes': '128M'},
                                      'ct/sub': {'pids.max': 4}}}
    job = {'kind': 'inject', 'errno': 'ENOENT', 'prop': 'memory.memsw.limit_in_bytes', 'params': {'spec': spec}}
    result = run_engine(sandbox, job)
    assert result['outcome'] == 'failed' and {'hierarchy': 'memory', 'cgroup': 'ct'} in result['created'], result
    msg = result['msg']
    assert "Failed to write memory:ct memory.memsw.limit_in_bytes = " in msg and '(ENOENT)' in msg, msg
    assert 'swap accounting is off: boot with swapaccount=1, or use missing_properties=warn' in msg, msg
    assert result['diff'] == [], result  # strict: rolled back
    # the remedy it names: the rest is restored, memsw listed as a warning
    result = run_engine(sandbox, dict(job, params={'spec': spec, 'missing_properties': 'warn'}))
    assert result['outcome'] == 'ok', result
    assert any('memory:ct property memory.memsw.limit_in_bytes' in w for w in result['warnings']), result
    assert read(sandbox, 'memory', 'ct', 'memory.limit_in_bytes') == str(64 << 20)
    assert read(sandbox, 'pids', 'ct', 'sub', 'pids.max') == '4'


def test_emptying_a_cpuset_that_has_tasks(sandbox):
    spec = {'version': 1, 'cgroups': {'ct': {'cpuset.cpus': '0', 'cpuset.mems': '0'}}}
    assert not run(sandbox, spec=spec).get('failed')
    proc = _in_cgroup(sandbox, 'import time\ntime.sleep(60)\n', ('cpuset', 'ct'))
    try:
        time.sleep(0.3)
        result = run(sandbox, spec={'version': 1, 'cgroups': {'ct': {'cpuset.cpus': ''}}}, mode='opport')
        assert result['failed'] and 'ENOSPC' in result['failed_items'][0]['error'], result
        assert 'cannot be left without CPUs' in result['failed_items'][0]['error']
        assert read(sandbox, 'cpuset', 'ct', 'cpuset.cpus') == '0'
    finally:
        proc.kill()
        proc.wait()


# -- systemd-owned cgroups and properties the host lacks --------------------------

def test_systemd_managed_cgroups_are_refused_unless_allowed(sandbox):
    spec = {'version': 1, 'cgroups': {'machine.slice/ct': {'pids.max': 5}}}
    result = run(sandbox, spec=spec)
    assert result['failed'] and 'machine.slice' in result['msg'] and 'daemon-reload' in result['msg'], result
    assert not os.path.exists(sandbox.path('pids', 'machine.slice'))
    result = run(sandbox, spec={'version': 1, 'cgroups': {'ct': {'pids.max': 5}}}, root='system.slice/x.service')
    assert result['failed'] and 'system.slice' in result['msg'], result
    # a scope on its own (a container's or a session's), no slice above it, in every mode
    scope = {'version': 1, 'cgroups': {'libpod-4f2a.scope': {'pids.max': 7}, 'libpod-4f2a.scope/ct': {'pids.max': 5}}}
    before = snapshot(sandbox)
    for mode in ('strict', 'opport', 'bind'):
        result = run(sandbox, spec=scope, mode=mode)
        assert result['failed'] and 'pids:libpod-4f2a.scope' in result['msg'], result
        assert 'lies in libpod-4f2a.scope, a cgroup that systemd manages' in result['msg'], result
        assert 'daemon-reload' in result['msg'] and 'allow_systemd_managed=true' in result['msg'], result
    assert snapshot(sandbox) == before
    result = run(sandbox, spec=spec, allow_systemd_managed=True)
    assert result['changed'] and read(sandbox, 'pids', 'machine.slice', 'ct', 'pids.max') == '5', result
    result = run(sandbox, spec=scope, allow_systemd_managed=True)
    assert result['changed'] and read(sandbox, 'pids', 'libpod-4f2a.scope', 'ct', 'pids.max') == '5', result


def test_missing_properties_warn_restores_the_rest(sandbox):
    os.mkdir(sandbox.path('cpu', 'old'))
    spec = {'version': 1, 'cgroups': {'old': {'cpu.shares': 300, 'cpu.no_such_knob': 1},
                                      'new': {'cpu.shares': 400, 'cpu.no_such_knob': 1}}}
    result = run(sandbox, spec=spec, mode='opport')
    assert result['failed'] and 'cpu.no_such_knob' in result['msg'] and 'missing_properties=warn' in result['msg']
    assert read(sandbox, 'cpu', 'old', 'cpu.shares') == '1024'
    result = run(sandbox, spec=spec, mode='opport', missing_properties='warn')
    assert result['changed'] and not result.get('failed'), result
    warnings = ' '.join(str(w) for w in result.get('warnings', []))
    assert 'cpu:old property cpu.no_such_knob' in warnings and 'cpu:new property cpu.no_such_knob' in warnings
    assert read(sandbox, 'cpu', 'old', 'cpu.shares') == '300' and read(sandbox, 'cpu', 'new', 'cpu.shares') == '400'


def test_a_tree_larger_than_the_open_file_limit_is_restored(sandbox):
    # The engine keeps a bounded number of directory descriptors per
    # hierarchy: 306 directories under a limit of 64 open files (one kept
    # per directory ran out, EMFILE, at about 1,000 cgroups in three
    # hierarchies under the common limit of 1024).
    cgroups = {}
    for top in ('ct0', 'ct1'):
        cgroups[top] = {'controllers': ['cpu', 'memory', 'pids'], 'properties': {'pids.max': 1000}}
        for sub in range(50):
            cgroups['%s/s%02d' % (top, sub)] = {
                'controllers': ['cpu', 'memory', 'pids'], 'properties': {'pids.max': 10 + sub, 'cpu.shares': 100 + sub}}
    spec = {'version': 1, 'cgroups': cgroups}
    first = run(sandbox, spec=spec, extra='ulimit -n 64')
    assert first['changed'] and not first.get('failed'), first.get('msg')
    assert first['counts']['created'] == 306 and first['counts']['writes'] == 202, first['counts']
    assert read(sandbox, 'pids', 'ct1', 's49', 'pids.max') == '59'
    assert read(sandbox, 'cpu', 'ct0', 's07', 'cpu.shares') == '107'
    second = run(sandbox, spec=spec, extra='ulimit -n 64')
    assert second['changed'] is False and not second.get('failed'), second.get('msg')
