"""8 ansible-playbook runs at once against one sandbox host: the same restore,
then 8 different ones. The host lock serialises them; the end state is right."""

import copy

from modrun import at_once, read
from test_playbooks import PLAY, playbook


def _play(n):
    play = copy.deepcopy(PLAY)
    task = play['tasks'][0]['checkpoint_restore.cgroups.cgroup_restore']
    task['spec'] = {'version': 1, 'cgroups': {'ct%d' % n: {'pids.max': 10 + n, 'cpu.shares': 100 + n},
                                              'ct%d/a' % n: {'memory.limit_in_bytes': '%dM' % (8 + n)}}}
    return play


def test_eight_identical_playbooks_at_once(sandbox):
    # The lock is held while the 8 start, so that all 8 meet it however the
    # machine schedules them; each must say that it waited.
    results = at_once(8, lambda i: playbook(sandbox, _play(1), tag='-%d' % i), sandbox, waiting=True)
    assert all(rc == 0 and not task.get('failed') for rc, _c, task, _o in results), results
    assert sum(changed for _rc, changed, _t, _o in results) == 1
    assert all(task['lock_waited'] > 0 for _rc, _c, task, _o in results)
    assert all('host lock' in output for _rc, _c, _t, output in results)  # the warning, in the default output
    assert read(sandbox, 'memory', 'ct1', 'a', 'memory.limit_in_bytes') == str(9 << 20)


def test_eight_different_playbooks_at_once(sandbox):
    results = at_once(8, lambda i: playbook(sandbox, _play(i), tag='-%d' % i))
    assert all(rc == 0 and changed == 1 for rc, changed, _t, _o in results), [r[3][-300:] for r in results]
    for i in range(8):
        assert read(sandbox, 'pids', 'ct%d' % i, 'pids.max') == str(10 + i)
        assert read(sandbox, 'memory', 'ct%d' % i, 'a', 'memory.limit_in_bytes') == str((8 + i) << 20)
