"""cgroup_mount on the real kernel, inside a cgroup sandbox (a private mount
namespace). Every effect is read back from /proc/self/mountinfo of that
namespace, taken by the driver after each step, independently of the module."""

import json
import os
import sys
import tempfile

import pytest

from modrun import module_env, REPO

MODULE = os.path.join(REPO, 'plugins', 'modules', 'cgroup_mount.py')
# Runs the steps in one namespace: a module call, or a shell command; after
# each step, the namespace's mountinfo as the kernel shows it.
DRIVER = r'''
import json, subprocess, sys
module, steps = sys.argv[1], json.load(open(sys.argv[2]))
results = []
for step in steps:
    if 'sh' in step:
        proc = subprocess.run(['sh', '-c', step['sh']], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True)
        result = {'rc': proc.returncode, 'out': proc.stdout}
    else:
        proc = subprocess.run([sys.executable, module, step['args_file']], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True)
        try:
            result = json.loads(proc.stdout)
        except ValueError:
            result = {'failed': True, 'unparsed': proc.stdout + proc.stderr}
    with open('/proc/self/mountinfo') as handle:
        result['_mountinfo'] = handle.read()
    results.append(result)
print(json.dumps(results))
'''


def call(check=False, diff=False, **args):
    return {'module': args, 'check': check, 'diff': diff}


def sh(command):
    return {'sh': command}


def run_steps(sandbox, steps):
    prepared = []
    for step in steps:
        if 'module' in step:
            payload = dict(step['module'], _ansible_check_mode=step['check'], _ansible_diff=step['diff'])
            fd, path = tempfile.mkstemp(prefix='mount-', suffix='.json', dir=sandbox.work)
            with os.fdopen(fd, 'w') as handle:
                json.dump({'ANSIBLE_MODULE_ARGS': payload}, handle)
            step = {'args_file': path}
        prepared.append(step)
    steps_file = os.path.join(sandbox.work, 'steps.json')
    with open(steps_file, 'w') as handle:
        json.dump(prepared, handle)
    proc = sandbox.run([sys.executable, '-c', DRIVER, MODULE, steps_file], env=module_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(proc.stdout)
    for result in results:
        assert 'Traceback' not in json.dumps(result.get('msg', '')) and not result.get('unparsed'), result
    return results


def mounts_at(mountinfo, point):
    """(fstype, root, super options) of each mount at `point`, in mount order."""
    found = []
    for line in mountinfo.splitlines():
        fields = line.split(' ')
        sep = fields.index('-', 6)
        if fields[4] == point:
            found.append((fields[sep + 1], fields[3], fields[sep + 3]))
    return found


def test_view_tmpfs_and_bind_idempotent_with_check_and_diff(sandbox):
    os.mkdir(sandbox.path('memory', 'ct1'))
    view = os.path.join(sandbox.work, 'rootfs', 'sys', 'fs', 'cgroup')
    os.makedirs(view)
    tmpfs = dict(path=view, fstype='tmpfs')
    bind = dict(path=view + '/memory', fstype='bind', src='/sys/fs/cgroup/memory/ct1')
    r = run_steps(sandbox, [
        call(check=True, diff=True, **tmpfs),          # 0
        call(**tmpfs),                                  # 1
        call(**tmpfs),                                  # 2
        call(check=True, **bind),                       # 3
        call(diff=True, **bind),                        # 4
        call(**bind),                                   # 5
        call(path=view + '/memory', fstype='bind', src='/sys/fs/cgroup/memory'),    # 6: another source
        call(path=view + '/x', fstype='bind', src=sandbox.work),                   # 7: not a cgroup
        call(path='/sys/fs/cgroup/memory/newdir', fstype='tmpfs'),                  # 8: inside a cgroupfs
        call(state='unmounted', **tmpfs),               # 9: busy, a bind below it
        call(state='unmounted', recursive=True, check=True, **tmpfs),               # 10
        call(state='unmounted', recursive=True, diff=True, **tmpfs),                # 11
        call(state='unmounted', recursive=True, **tmpfs),                           # 12
    ])
    # check mode: changed, nothing mounted
    assert r[0]['changed'] and mounts_at(r[0]['_mountinfo'], view) == []
    assert r[0]['diff'] == {'before': '', 'after': 'tmpfs on %s\n' % view}
    assert r[1]['changed'] and [m[0] for m in mounts_at(r[1]['_mountinfo'], view)] == ['tmpfs']
    assert not r[2]['changed'] and len(mounts_at(r[2]['_mountinfo'], view)) == 1
    assert r[3]['changed'] and r[3]['created_dirs'] == [view + '/memory']
    assert mounts_at(r[3]['_mountinfo'], view + '/memory') == []
    # the bind shows the sandbox's ct1 as its root: the host path of the cgroup
    assert r[4]['changed'] and r[4]['created_dirs'] == [view + '/memory']
    assert [m[:2] for m in mounts_at(r[4]['_mountinfo'], view + '/memory')] == [('cgroup', '/%s/ct1' % sandbox.name)]
    assert r[4]['diff']['after'].endswith('bind of /sys/fs/cgroup/memory/ct1 on %s/memory\n' % view)
    assert not r[5]['changed'] and len(mounts_at(r[5]['_mountinfo'], view + '/memory')) == 1
    assert r[6]['failed'] and 'is already mounted there' in r[6]['msg'] and view + '/memory' in r[6]['msg']
    assert r[7]['failed'] and 'not a cgroup directory' in r[7]['msg']
    assert mounts_at(r[7]['_mountinfo'], view + '/x') == []
    assert r[8]['failed'] and 'cgroup filesystem' in r[8]['msg']
    assert not os.path.exists(sandbox.path('memory', 'newdir')), 'a cgroup was created'
    assert r[9]['failed'] and 'EBUSY' in r[9]['msg'] and 'recursive' in r[9]['msg']
    assert len(mounts_at(r[9]['_mountinfo'], view)) == 1
    assert r[10]['changed'] and r[10]['unmounted'] == [view + '/memory', view]
    assert len(mounts_at(r[10]['_mountinfo'], view + '/memory')) == 1
    assert r[11]['changed'] and r[11]['diff']['after'] == '' and 'tmpfs on %s' % view in r[11]['diff']['before']
    assert mounts_at(r[11]['_mountinfo'], view) == [] and mounts_at(r[11]['_mountinfo'], view + '/memory') == []
    assert not r[12]['changed']


def test_existing_hierarchies_are_recognised(sandbox):
    r = run_steps(sandbox, [
        call(path='/sys/fs/cgroup/memory', fstype='cgroup', controllers=['memory']),
        call(path='/sys/fs/cgroup/systemd', fstype='cgroup', controllers=['name=systemd']),
        call(path='/sys/fs/cgroup/memory', fstype='cgroup', controllers=['pids']),
        call(path='/sys/fs/cgroup/memory', fstype='tmpfs', state='unmounted'),
        call(path=sandbox.work + '/cpu2', fstype='cgroup', controllers=['cpu', 'cpuacct']),
    ])
    assert not r[0]['changed'] and r[0]['mount']['controllers'] == ['memory']
    assert not r[1]['changed'] and r[1]['mount']['controllers'] == ['name=systemd']
    assert r[2]['failed'] and 'cgroup v1 hierarchy memory (bind of /%s) on /sys/fs/cgroup/memory is already mounted' % sandbox.name in r[2]['msg']
    # unmounted asks for a tmpfs, a cgroup is there: refused, left alone
    assert r[3]['failed'] and 'instead' in r[3]['msg']
    assert mounts_at(r[3]['_mountinfo'], '/sys/fs/cgroup/memory')
    # cpu and cpuacct are separate hierarchies here (or, on other hosts, a pair
    # that is already mounted elsewhere): never a raw EBUSY
    if open('/proc/cgroups').read().count('\n') and r[4].get('failed'):
        assert 'EBUSY' not in r[4]['msg'] and '/sys/fs/cgroup/cpu' in r[4]['msg'], r[4]['msg']
        assert not os.path.exists(sandbox.work + '/cpu2')
    else:
        pytest.fail('mounting cpu,cpuacct as one hierarchy should be refused here: %s' % r[4])


def _kernel_ids():
    ids = {}
    with open('/proc/cgroups') as handle:
        for line in handle:
            if not line.startswith('#'):
                name, hid = line.split()[:2]
                ids[name] = int(hid)
    return ids


def test_comounted_hierarchy_in_the_namespace_then_gone(sandbox):
    """A new net_cls,net_prio hierarchy, mounted only inside the sandbox's
    namespace; no cgroup is created in it, and it is unmounted at the end."""
    ids = _kernel_ids()
    if 'net_cls' not in ids or 'net_prio' not in ids:
        pytest.skip('this kernel has no net_cls/net_prio')
    if (ids['net_cls'] or ids['net_prio']) and ids['net_cls'] != ids['net_prio']:
        pytest.skip('net_cls and net_prio are already bound apart on this host')
    point = '/sys/fs/cgroup/net_cls,net_prio'
    pair = dict(path=point, fstype='cgroup', controllers=['net_prio', 'net_cls'])
    r = run_steps(sandbox, [
        call(check=True, diff=True, **pair),
        call(**pair),
        call(**pair),
        call(path='/sys/fs/cgroup/net_cls', fstype='cgroup', controllers=['net_cls']),
        sh('ls -d /sys/fs/cgroup/net_cls 2>&1; cat /proc/cgroups'),
        call(state='unmounted', **pair),
        call(state='unmounted', **pair),
    ])
    assert r[0]['changed'] and mounts_at(r[0]['_mountinfo'], point) == []
    assert r[0]['diff']['after'] == 'cgroup v1 hierarchy net_cls,net_prio on %s\n' % point
    assert r[1]['changed'] and r[1]['created_dirs'] == [point]
    (fstype, root, options), = mounts_at(r[1]['_mountinfo'], point)
    assert fstype == 'cgroup' and root == '/' and set(options.split(',')) >= {'net_cls', 'net_prio'}
    assert not r[2]['changed'] and r[2]['mount']['controllers'] == ['net_cls', 'net_prio']
    msg = r[3]['msg']
    assert r[3]['failed'] and 'EBUSY' not in msg and point in msg and 'use controllers [net_cls, net_prio]' in msg
    assert 'No such file' in r[4]['out'], 'the refused mount left a directory behind'
    assert r[5]['changed'] and r[5]['unmounted'] == [point] and mounts_at(r[5]['_mountinfo'], point) == []
    assert not r[6]['changed']


def test_cgroup2_mount_and_unmount(sandbox):
    point = os.path.join(sandbox.work, 'v2')
    v2 = dict(path=point, fstype='cgroup2')
    r = run_steps(sandbox, [call(**v2), call(**v2), call(state='unmounted', **v2), call(state='unmounted', **v2)])
    assert r[0]['changed'] and [m[0] for m in mounts_at(r[0]['_mountinfo'], point)] == ['cgroup2']
    assert not r[1]['changed']
    assert r[2]['changed'] and mounts_at(r[2]['_mountinfo'], point) == []
    assert not r[3]['changed']


def test_bad_arguments_are_one_message(sandbox):
    r = run_steps(sandbox, [
        call(path=sandbox.work + '/a', fstype='tmpfs', controllers=['memory']),
        call(path=sandbox.work + '/a', fstype='cgroup'),
        call(path=sandbox.work + '/a', fstype='bind', src='/nonexistent'),
    ])
    assert r[0]['failed'] and 'controllers is only for fstype cgroup' in r[0]['msg']
    assert r[1]['failed'] and 'controllers' in r[1]['msg']
    assert r[2]['failed'] and r[2]['msg'].startswith('Failed to bind /nonexistent')
    assert not os.path.exists(sandbox.work + '/a')
