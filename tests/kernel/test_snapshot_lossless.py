"""A lossless snapshot (issue 15, part 6): owners and modes that differ
between the hierarchies of one cgroup (an LXC or systemd delegation) and the
order of the device whitelist survive snapshot -> remove -> restore, read
back from the kernel's files."""

import os

from modrun import cgroups, read, run, run_module

# memory and pids delegated to other owners, cpu left as the kernel made it
PERMS = {'memory': ((0o775, 1000, 1000), (0o664, 1000, 1000)),
         'pids': ((0o750, 2000, 3000), (0o640, 2000, 3000)),
         'cpu': (None, None)}
FILES = ('cgroup.procs', 'tasks', 'notify_on_release', 'cgroup.clone_children')
# the order of a container's whitelist (LXC's and runc's defaults), not sorted
WHITELIST = ['c *:* m', 'b *:* m', 'c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 136:* rwm', 'c 5:2 rwm',
             'c 10:229 rwm', 'c 5:0 rwm', 'c 1:9 rwm', 'c 1:8 rwm']


def _stat(path):
    st = os.stat(path)
    return (st.st_mode & 0o7777, st.st_uid, st.st_gid)


def _owners(box, tree):
    """{(hierarchy, cgroup, file or ''): (mode, uid, gid)} of every directory and FILES file."""
    found = {}
    for hierarchy in PERMS:
        for cgroup in tree:
            base = box.path(hierarchy, *cgroup.split('/'))
            found[(hierarchy, cgroup, '')] = _stat(base)
            for name in FILES:
                found[(hierarchy, cgroup, name)] = _stat(os.path.join(base, name))
    return found


def _take(box, **args):
    result = run_module(box, 'cgroup_snapshot', **args)
    assert not result.get('failed') and result['changed'] is False, result
    assert not result.get('warnings'), result['warnings']
    return result['spec']


def _remove(box, hierarchies, tree):
    for hierarchy in hierarchies:
        for cgroup in sorted(tree, key=lambda c: -c.count('/')):
            os.rmdir(box.path(hierarchy, *cgroup.split('/')))


def _delegated_tree(box):
    """ct in memory, pids and cpu with another owner and mode in each; ct/sub
    delegated in memory only; ct/sub/deep as the kernel made it everywhere."""
    tree = ['ct', 'ct/sub', 'ct/sub/deep']
    for hierarchy, (directory, files) in PERMS.items():
        for cgroup in tree:
            os.mkdir(box.path(hierarchy, *cgroup.split('/')))
        if directory is None:
            continue
        base = box.path(hierarchy, 'ct')
        os.chown(base, directory[1], directory[2])
        os.chmod(base, directory[0])
        for name in ('cgroup.procs', 'tasks'):
            os.chown(os.path.join(base, name), files[1], files[2])
            os.chmod(os.path.join(base, name), files[0])
    sub = box.path('memory', 'ct', 'sub')
    os.chown(sub, 1000, 1000)
    os.chown(os.path.join(sub, 'cgroup.procs'), 1000, 1000)
    with open(box.path('pids', 'ct', 'pids.max'), 'w') as handle:
        handle.write('50')
    return tree


def test_owners_and_modes_that_differ_between_hierarchies_round_trip(sandbox):
    tree = _delegated_tree(sandbox)
    before = _owners(sandbox, tree)
    assert len(set(v for k, v in before.items() if k[1:] == ('ct', ''))) == 3  # three owners and modes
    spec = _take(sandbox, paths=['ct'])
    ct = spec['cgroups']['ct']
    # per hierarchy where they differ ...
    assert ct['perms'] == {'cpu': {'mode': '0755', 'uid': 0, 'gid': 0},
                           'memory': {'mode': '0775', 'uid': 1000, 'gid': 1000},
                           'pids': {'mode': '0750', 'uid': 2000, 'gid': 3000}}, ct
    assert ct['file_perms']['tasks']['cpu'] == {'mode': '0644', 'uid': 0, 'gid': 0}, ct
    # ... and the plain form where they do not
    assert spec['cgroups']['ct/sub/deep']['perms'] == {'mode': '0755', 'uid': 0, 'gid': 0}
    assert 'file_perms' not in spec['cgroups']['ct/sub/deep']
    assert 'tasks' not in spec['cgroups']['ct/sub'].get('file_perms', {})
    _remove(sandbox, PERMS, tree)
    restored = run(sandbox, spec=spec)
    assert restored['changed'] is True and not restored.get('failed'), restored
    assert not restored.get('warnings'), restored['warnings']
    assert _owners(sandbox, tree) == before
    assert read(sandbox, 'pids', 'ct', 'pids.max') == '50'
    # the same spec again: nothing to do, in check mode and for real
    checked = run(sandbox, spec=spec, check=True, diff=True, mode='opport')
    assert checked['changed'] is False and checked['diff']['before'] == checked['diff']['after'], checked
    assert run(sandbox, spec=spec)['changed'] is False
    assert _take(sandbox, paths=['ct']) == spec
    # one hierarchy changed by hand converges, and only it
    os.chown(sandbox.path('pids', 'ct'), 0, 0)
    os.chmod(sandbox.path('pids', 'ct', 'tasks'), 0o644)
    checked = run(sandbox, spec=spec, check=True, diff=True, mode='opport')
    assert checked['changed'] is True
    assert 'pids:ct uid = 2000' in checked['diff']['after'] and 'pids:ct uid = 0' in checked['diff']['before']
    assert 'memory:ct uid = 1000' in checked['diff']['before'], checked['diff']
    converged = run(sandbox, spec=spec, mode='opport')
    assert sorted((p['hierarchy'], p['cgroup'], p['file'] or '') for p in converged['perms']) == \
        [('pids', 'ct', ''), ('pids', 'ct', 'tasks')], converged
    assert _owners(sandbox, tree) == before
    assert run(sandbox, spec=spec, mode='opport')['changed'] is False


def test_per_hierarchy_perms_roll_back(sandbox):
    """bind mode onto an existing top-level cgroup: a later refused write
    undoes each hierarchy's chown and chmod (ct/z asks for CPU 1, which
    ct's cpuset does not have: the kernel refuses it)."""
    for hierarchy in ('memory', 'pids', 'cpuset'):
        os.mkdir(sandbox.path(hierarchy, 'ct'))
    for name in ('cpuset.cpus', 'cpuset.mems'):
        with open(sandbox.path('cpuset', 'ct', name), 'w') as handle:
            handle.write('0')
    before = _stat(sandbox.path('memory', 'ct')), _stat(sandbox.path('pids', 'ct', 'tasks'))
    spec = {'version': 1, 'cgroups': {
        'ct': {'controllers': ['cpuset', 'memory', 'pids'],
               'perms': {'memory': {'mode': '0700', 'uid': 1000}, 'pids': {'uid': 2000, 'gid': 3000}},
               'file_perms': {'tasks': {'pids': {'mode': '0600', 'uid': 2000}}},
               'properties': {'pids.max': 9}},
        'ct/z': {'cpuset.cpus': '0-1', 'cpuset.mems': '0'}}}
    result = run(sandbox, spec=spec, mode='bind')
    assert result['failed'] and 'Rolled back' in result['msg'], result
    assert (_stat(sandbox.path('memory', 'ct')), _stat(sandbox.path('pids', 'ct', 'tasks'))) == before
    assert _stat(sandbox.path('pids', 'ct')) == _stat(sandbox.path('cpuset', 'ct'))
    assert cgroups(sandbox, 'cpuset') == ['ct']
    # and without the bad cgroup each hierarchy gets its own
    del spec['cgroups']['ct/z']
    assert run(sandbox, spec=spec, mode='bind')['changed'] is True
    assert _stat(sandbox.path('memory', 'ct')) == (0o700, 1000, before[0][2])
    assert _stat(sandbox.path('pids', 'ct'))[1:] == (2000, 3000)
    assert _stat(sandbox.path('pids', 'ct', 'tasks')) == (0o600, 2000, 0)
    assert _stat(sandbox.path('cpuset', 'ct')) == (0o755, 0, 0)
    assert _stat(sandbox.path('memory', 'ct', 'tasks')) == (0o644, 0, 0)
    assert run(sandbox, spec=spec, mode='bind')['changed'] is False


def _allow(box, cgroup, rules):
    base = box.path('devices', *cgroup.split('/'))
    with open(os.path.join(base, 'devices.deny'), 'w') as handle:
        handle.write('a')
    for rule in rules:
        with open(os.path.join(base, 'devices.allow'), 'w') as handle:
            handle.write(rule)


def test_device_whitelist_comes_back_in_its_order(sandbox):
    tree = ['ct', 'ct/inherits', 'ct/own']
    os.mkdir(sandbox.path('devices', 'ct'))
    _allow(sandbox, 'ct', WHITELIST)
    os.mkdir(sandbox.path('devices', 'ct', 'inherits'))
    os.mkdir(sandbox.path('devices', 'ct', 'own'))
    _allow(sandbox, 'ct/own', ['c 5:0 rwm', 'c 1:3 rwm', 'b *:* m'])
    before = dict((c, read(sandbox, 'devices', *(c.split('/') + ['devices.list']))) for c in tree)
    assert before['ct'].splitlines() == WHITELIST != sorted(WHITELIST)
    spec = _take(sandbox, paths=['ct'], controllers=['devices'])
    assert spec['cgroups']['ct']['properties']['devices.list'] == WHITELIST
    _remove(sandbox, ['devices'], tree)
    restored = run(sandbox, spec=spec)
    assert restored['changed'] is True and not restored.get('failed'), restored
    assert dict((c, read(sandbox, 'devices', *(c.split('/') + ['devices.list']))) for c in tree) == before
    assert run(sandbox, spec=spec)['changed'] is False
    # the comparison is a set: the same rules in another order are no change
    shuffled = {'version': 1, 'cgroups': {'ct': {'devices.list': sorted(WHITELIST)}}}
    assert run(sandbox, spec=shuffled, mode='opport')['changed'] is False
    assert read(sandbox, 'devices', 'ct', 'devices.list') == before['ct']


def test_a_whitelist_given_in_the_spec_is_written_in_its_order(sandbox):
    spec = {'version': 1, 'cgroups': {'ct': {'devices.list': WHITELIST}, 'ct/sub': {'devices.list': WHITELIST[3:]}}}
    assert run(sandbox, spec=spec)['changed'] is True
    assert read(sandbox, 'devices', 'ct', 'devices.list') == '\n'.join(WHITELIST)
    assert read(sandbox, 'devices', 'ct', 'sub', 'devices.list') == '\n'.join(WHITELIST[3:])
    assert run(sandbox, spec=spec)['changed'] is False
    # check mode reports the values in that order too
    other = {'version': 1, 'cgroups': {'ct2': {'devices.list': WHITELIST}}}
    checked = run(sandbox, spec=other, check=True)
    assert [w['after'] for w in checked['writes']] == [', '.join(WHITELIST)], checked
