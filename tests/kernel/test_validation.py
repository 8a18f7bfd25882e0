"""Parameters taken as given, and cgroups placed by the host: mode "" is no
mode, lock_timeout 0 does not wait, and on a host whose one hierarchy is
cgroup v2 a cgroup with only core files (or none) lives in it. Everything is
read back from the kernel's files on the host."""

import os
import subprocess
import sys
import time

from modrun import HOLDER, read, run, snapshot

SPEC = {'version': 1, 'cgroups': {'ct': {'pids.max': 5}}}
# this machine's cgroup2 mount, bound over the sandbox's /sys/fs/cgroup: the only hierarchy there
PURE_V2 = 'mount --bind /sys/fs/cgroup/unified /sys/fs/cgroup'
CORE_ONLY = {'version': 1, 'cgroups': {
    'ct': {'cgroup.max.descendants': 3, 'cgroup.max.depth': 2},
    'ct/empty': {},
    'thr': {'cgroup.max.depth': 1},
    'thr/t': {'cgroup.type': 'threaded'},
}}


def test_an_empty_mode_is_refused_naming_the_three_modes(sandbox):
    before = snapshot(sandbox)
    result = run(sandbox, spec=SPEC, mode='')
    # before: taken as strict, and ct was created
    assert result['failed'] and "Invalid mode ''" in result['msg'], result
    assert 'strict, opport or bind' in result['msg'], result
    assert not os.path.exists(sandbox.path('pids', 'ct')) and snapshot(sandbox) == before


def test_lock_timeout_zero_fails_at_once_when_the_lock_is_held(sandbox):
    path = os.path.join(sandbox.work, 'lock', 'checkpoint_restore.cgroups.lock')
    holder = subprocess.Popen([sys.executable, '-c', HOLDER, path, '300', '0', '0'], stdout=subprocess.PIPE,
                              universal_newlines=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        start = time.monotonic()
        result = run(sandbox, spec=SPEC, lock_timeout=0)
        took = time.monotonic() - start
    finally:
        holder.kill()
        holder.wait()
    # before: lock_timeout 0 was read as 60, and the call waited a minute
    assert result['failed'] and 'lock_timeout 0 says not to wait' in result['msg'], result
    assert 'Nothing was written' in result['msg'], result
    assert took < 15, 'lock_timeout 0 took %.1f s' % took
    assert not os.path.exists(sandbox.path('pids', 'ct'))
    # free again: the same call runs
    result = run(sandbox, spec=SPEC, lock_timeout=0)
    assert result['changed'] and not result.get('failed'), result
    assert read(sandbox, 'pids', 'ct', 'pids.max') == '5'


def test_a_negative_lock_timeout_is_refused(sandbox):
    result = run(sandbox, spec=SPEC, lock_timeout=-1)
    assert result['failed'] and 'Invalid lock_timeout -1' in result['msg'], result
    assert not os.path.exists(sandbox.path('pids', 'ct'))


def test_on_a_pure_v2_host_core_only_cgroups_live_in_the_one_hierarchy(sandbox):
    assert 'unified' in sandbox.hierarchies, 'this test needs the host cgroup2 mount at /sys/fs/cgroup/unified'
    first = run(sandbox, only=['unified'], extra=PURE_V2, spec=CORE_ONLY)
    # before: "cgroup 'ct': cannot tell which hierarchies it belongs to"
    assert first['changed'] and not first.get('failed'), first
    assert read(sandbox, 'unified', 'ct', 'cgroup.max.descendants') == '3'
    assert read(sandbox, 'unified', 'ct', 'cgroup.max.depth') == '2'
    assert os.path.isdir(sandbox.path('unified', 'ct', 'empty'))
    assert read(sandbox, 'unified', 'thr', 'cgroup.max.depth') == '1'
    assert read(sandbox, 'unified', 'thr', 't', 'cgroup.type') == 'threaded'
    assert read(sandbox, 'unified', 'thr', 'cgroup.type') == 'domain threaded'
    assert sorted(d['cgroup'] for d in first['created']) == ['ct', 'ct/empty', 'thr', 'thr/t']
    again = run(sandbox, only=['unified'], extra=PURE_V2, spec=CORE_ONLY, mode='opport')
    assert again['changed'] is False and not again.get('failed'), again


def test_beside_v1_hierarchies_a_cgroup_with_no_controller_is_refused(sandbox):
    before = snapshot(sandbox)
    result = run(sandbox, spec=CORE_ONLY)
    assert result['failed'] and "cgroup 'ct'" in result['msg'] and 'cannot tell which hierarchies' in result['msg'], \
        result
    assert snapshot(sandbox) == before
