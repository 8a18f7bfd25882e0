"""A kernel refusal in the middle of a tree: strict and bind roll back
everything, opport applies the rest and lists what failed."""

import json
import os
import sys

from modrun import MODULE, cgroups, module_env, read, run, snapshot

UNLIMITED = '9223372036854771712'


def _spec(bad_cpus):
    return {'version': 1, 'cgroups': {
        'ct1': {'controllers': ['cpuset', 'memory', 'pids'],
                'perms': {'mode': '0750', 'uid': 1000},
                'properties': {'cpuset.cpus': '0', 'cpuset.mems': '0', 'memory.limit_in_bytes': '128M',
                               'pids.max': 100}},
        'ct1/a': {'cpuset.cpus': '0', 'cpuset.mems': '0', 'memory.limit_in_bytes': '64M'},
        'ct1/b': {'cpuset.cpus': '0', 'cpuset.mems': '0', 'memory.limit_in_bytes': '32M'},
        # the last cgroup names a CPU that its parent's cpuset does not have
        # (one that exists: a CPU the host lacks is refused before any write)
        'ct1/z': {'cpuset.cpus': bad_cpus, 'cpuset.mems': '0', 'memory.limit_in_bytes': '16M'},
    }}


def test_strict_rolls_back_created_cgroups(sandbox):
    before = snapshot(sandbox)
    result = run(sandbox, spec=_spec('1'), root='outer')
    assert result['failed'], result
    assert "cpuset:outer/ct1/z cpuset.cpus = '1'" in result['msg'], result['msg']
    # v1 refuses a CPU outside the parent's cpuset with EACCES
    assert 'EACCES' in result['msg'] or 'EINVAL' in result['msg'], result['msg']
    assert 'Rolled back' in result['msg'] and result['rolled_back'] and not result['rollback_errors']
    assert snapshot(sandbox) == before
    for hierarchy in ('cpuset', 'memory', 'pids'):
        assert cgroups(sandbox, hierarchy) == []


def _premade_top_level(sandbox):
    """ct1 as a premount step leaves it: existing, with its own old limits."""
    for hierarchy in ('cpuset', 'memory', 'pids'):
        os.mkdir(sandbox.path(hierarchy, 'ct1'))
    for name, value in (('cpuset.cpus', '0'), ('cpuset.mems', '0')):
        with open(sandbox.path('cpuset', 'ct1', name), 'w') as handle:
            handle.write(value)
    with open(sandbox.path('memory', 'ct1', 'memory.limit_in_bytes'), 'w') as handle:
        handle.write('1G')
    with open(sandbox.path('pids', 'ct1', 'pids.max'), 'w') as handle:
        handle.write('7')
    os.mkdir(sandbox.path('memory', 'ct1', 'existing'))


def test_bind_rolls_back_writes_to_existing_cgroups(sandbox):
    _premade_top_level(sandbox)
    before = snapshot(sandbox)
    result = run(sandbox, spec=_spec('0-1'), mode='bind')
    assert result['failed'] and 'ct1/z cpuset.cpus' in result['msg'], result
    assert snapshot(sandbox) == before
    assert read(sandbox, 'memory', 'ct1', 'memory.limit_in_bytes') == str(1 << 30)
    assert read(sandbox, 'pids', 'ct1', 'pids.max') == '7'
    assert read(sandbox, 'cpuset', 'ct1', 'cpuset.cpus') == '0'
    assert cgroups(sandbox, 'memory') == ['ct1', 'ct1/existing']


def test_opport_applies_the_rest_and_lists_the_failure(sandbox):
    _premade_top_level(sandbox)
    result = run(sandbox, spec=_spec('1'), mode='opport')
    assert result['failed'], result
    assert [(f['cgroup'], f['hierarchy'], f['property']) for f in result['failed_items']] == \
        [('ct1/z', 'cpuset', 'cpuset.cpus')]
    assert "cpuset.cpus = '1'" in result['failed_items'][0]['error']
    assert result['changed'] is True
    # everything else is applied, z included (its memory limit and cgroup)
    assert read(sandbox, 'memory', 'ct1', 'memory.limit_in_bytes') == str(128 << 20)
    assert read(sandbox, 'memory', 'ct1', 'z', 'memory.limit_in_bytes') == str(16 << 20)
    assert read(sandbox, 'cpuset', 'ct1', 'b', 'cpuset.cpus') == '0'
    assert read(sandbox, 'cpuset', 'ct1', 'z', 'cpuset.mems') == '0'
    # z keeps what a new cpuset cgroup copies from its parent
    assert read(sandbox, 'cpuset', 'ct1', 'z', 'cpuset.cpus') == '0'
    assert read(sandbox, 'pids', 'ct1', 'pids.max') == '100'
    # the second run retries only what failed
    again = run(sandbox, spec=_spec('1'), mode='opport')
    assert [w['property'] for w in again['writes']] == [] and len(again['failed_items']) == 1, again


def test_opport_goes_on_below_a_cgroup_whose_write_failed(sandbox):
    spec = {'version': 1, 'cgroups': {'ct0': {'cpuset.cpus': '0', 'cpuset.mems': '0'},
                                      'ct0/ct1': {'cpuset.cpus': '1', 'cpuset.mems': '0'},
                                      'ct0/ct1/child': {'cpuset.mems': '0'}}}
    result = run(sandbox, spec=spec, mode='opport')
    # the child starts with its parent's planned CPUs, which the kernel refused too
    assert [(f['cgroup'], f['property']) for f in result['failed_items']] == \
        [('ct0/ct1', 'cpuset.cpus'), ('ct0/ct1/child', 'cpuset.cpus')]
    assert cgroups(sandbox, 'cpuset') == ['ct0', 'ct0/ct1', 'ct0/ct1/child']
    assert read(sandbox, 'cpuset', 'ct0', 'ct1', 'child', 'cpuset.mems') == '0'


# Runs the module in the sandbox's namespace, then shows that namespace's
# mounts and view: the mount made and undone there is seen nowhere else.
MOUNT_THEN_FAIL = r'''
import json, os, subprocess, sys
proc = subprocess.run([sys.executable] + sys.argv[1:], stdout=subprocess.PIPE, universal_newlines=True)
with open('/proc/self/mountinfo') as handle:
    mountinfo = handle.read()
print(json.dumps({'result': json.loads(proc.stdout), 'mountinfo': mountinfo,
                  'view': sorted(os.listdir('/sys/fs/cgroup'))}))
'''


def _visible_hierarchies(mountinfo):
    """Names of the cgroup mounts under /sys/fs/cgroup that sit on the
    view's tmpfs (the host's, hidden below it, are listed too)."""
    found = set()
    for line in mountinfo.splitlines():
        fields = line.split()
        point, fstype = fields[4], fields[fields.index('-') + 1]
        if point == '/sys/fs/cgroup':
            found = set()  # a later mount hides what was there
        elif fstype == 'cgroup' and os.path.dirname(point) == '/sys/fs/cgroup':
            found.add(os.path.basename(point))
    return found


def test_strict_unmounts_what_it_mounted_when_a_later_write_fails(sandbox):
    # nothing is mounted in the view (a tmpfs), so strict mounts cpuset and
    # pids (whole hierarchies, re-rooted into the sandbox subtree); then a
    # cpuset write is refused. (Beside the sandbox's binds of subtrees a
    # fresh mount is refused: tests/kernel/test_layouts.py.)
    spec = {'version': 1, 'cgroups': {
        'ct1': {'controllers': ['cpuset', 'pids'],
                'properties': {'pids.max': 50, 'cpuset.mems': '0', 'cpuset.cpus': '0'}},
        'ct1/z': {'cpuset.mems': '0', 'cpuset.cpus': '1'}}}
    before = snapshot(sandbox)
    args = os.path.join(sandbox.work, 'args.json')
    with open(args, 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': dict(spec=spec, root=sandbox.name)}, handle)
    proc = sandbox.run([sys.executable, '-c', MOUNT_THEN_FAIL, MODULE, args], only=set(), env=module_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    result = out['result']
    assert result['failed'] and "cpuset.cpus = '1'" in result['msg'], result
    assert sorted(m['hierarchy'] for m in result['mounted']) == ['cpuset', 'pids'], result
    assert 'mount /sys/fs/cgroup/pids' in result['rolled_back'], result
    assert 'mount /sys/fs/cgroup/cpuset' in result['rolled_back'], result
    assert not result['rollback_errors'], result
    # read back in the module's own namespace: no mount there, no directory
    assert _visible_hierarchies(out['mountinfo']) == set()
    assert out['view'] == [], out['view']
    assert snapshot(sandbox) == before


def test_strict_rollback_restores_a_changed_root_value(sandbox):
    # '/' exists and is converged in strict; when a write later in the tree
    # is refused, its old value comes back with the rest.
    spec = {'version': 1, 'cgroups': {
        '/': {'memory.limit_in_bytes': '300M', 'pids.max': 500},
        'ct1': {'controllers': ['cpuset', 'memory'],
                'properties': {'memory.limit_in_bytes': '64M', 'cpuset.mems': '0', 'cpuset.cpus': '0'}},
        'ct1/z': {'cpuset.mems': '0', 'cpuset.cpus': '1'}}}
    before = snapshot(sandbox)
    result = run(sandbox, spec=spec)
    assert result['failed'] and "cpuset:ct1/z cpuset.cpus = '1'" in result['msg'], result
    assert 'write memory:/ memory.limit_in_bytes' in result['rolled_back'], result
    assert 'write pids:/ pids.max' in result['rolled_back'], result
    assert not result['rollback_errors'], result
    assert read(sandbox, 'memory', 'memory.limit_in_bytes') == UNLIMITED
    assert read(sandbox, 'pids', 'pids.max') == 'max'
    assert snapshot(sandbox) == before
