"""cgroup_tasks on real processes in sandbox cgroups: the tree's cgroups as
paths in the view, its top-level cgroup, and the check after a move."""

from modrun import run, run_module, warnings_of
from proctree import start_tree, stop_tree


def test_a_tree_spread_over_subcgroups(sandbox):
    spec = {'version': 1, 'cgroups': {'ct': {'controllers': ['pids', 'memory'], 'properties': {'pids.max': 50}},
                                      'ct/app': {'pids.max': 20}, 'ct/db': {'pids.max': 10}}}
    assert not run(sandbox, spec=spec).get('failed')
    proc, pids = start_tree(sandbox, 'pids', ['ct/app', 'ct/app', 'ct/db'])
    try:
        found = run_module(sandbox, 'cgroup_tasks', pid=pids[0])
        assert not found.get('failed'), found
        by_pid = dict((t['pid'], t['cgroups']) for t in found['tasks'])
        assert sorted(by_pid) == sorted(pids)
        assert by_pid[pids[0]]['pids'] == 'ct/app' and by_pid[pids[2]]['pids'] == 'ct/db'
        # memory: the tree was never moved into the sandbox, so it is outside the view
        assert by_pid[pids[0]]['memory'] is None
        with open('/proc/%d/cgroup' % pids[2]) as handle:  # the kernel's own view, from the host
            assert ':pids:/%s/ct/db\n' % sandbox.name in handle.read()
        # the container tree is ct in pids; memory is left out, with a warning
        assert found['tops']['pids'] == 'ct' and 'memory' not in found['tops'], found
        assert 'ct' in found['paths'] and 'pids' in found['controllers'] and 'memory' not in found['controllers']
        assert any(w.startswith('Hierarchy memory left out: process') for w in warnings_of(found)), found
        # expect: the same tree checks; one process moved elsewhere is named
        ok = run_module(sandbox, 'cgroup_tasks', pid=pids[0], expect=found['tasks'])
        assert not ok.get('failed') and ok['in_place'] is True and ok['mismatches'] == [], ok
        with open(sandbox.path('pids', 'ct', 'app', 'cgroup.procs'), 'w') as handle:
            handle.write(str(pids[2]))
        moved = run_module(sandbox, 'cgroup_tasks', pid=pids[0], expect=found['tasks'])
        assert moved.get('failed') and 'process %d is in pids:ct/app, not in pids:ct/db' % pids[2] in moved['msg']
        # fail_on_mismatch false: the same finding, reported rather than failed (a restore's first question)
        asked = run_module(sandbox, 'cgroup_tasks', pid=pids[0], expect=found['tasks'], fail_on_mismatch=False)
        assert not asked.get('failed') and asked['in_place'] is False, asked
        assert asked['mismatches'] == ['process %d is in pids:ct/app, not in pids:ct/db' % pids[2]], asked
        gone = run_module(sandbox, 'cgroup_tasks', pid=999999999, expect=found['tasks'], fail_on_mismatch=False)
        assert not gone.get('failed') and gone['in_place'] is False, gone
        assert gone['mismatches'] == ['process 999999999 is not running'], gone
    finally:
        stop_tree(proc, pids)
