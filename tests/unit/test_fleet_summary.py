"""The fleet playbook's summary filter: what each host's line says and when
the summary is due. tests/fleet runs it through real ansible-playbook."""

from ansible_collections.checkpoint_restore.cgroups.plugins.filter import fleet_summary as fs

OK = {'changed': True, 'created': [{'cgroup': '/ct1', 'hierarchy': 'memory'}, {'cgroup': '/ct1', 'hierarchy': 'cpu'},
                                   {'cgroup': '/ct1/app', 'hierarchy': 'memory'}],
      'writes': [{}, {}, {}], 'failed_items': []}
FAILED = {'failed': True, 'msg': '  Failed to restore: no such hierarchy\n', 'created': [], 'writes': []}
UNREACHABLE = {'unreachable': True, 'msg': 'ssh: port 22: Connection refused'}
SKIPPED = {'skipped': True, 'changed': False}


class HostVars(dict):
    """hostvars as the filter sees it: a mapping of host to its variables."""

    def __init__(self, results):
        super(HostVars, self).__init__((name, {} if result is None else {'__cgroup_fleet_result': result})
                                       for name, result in results.items())


def summary(results, batch=None, **kwargs):
    hosts = list(results)
    return fs.fleet_summary(HostVars(results), hosts, batch or hosts, **kwargs)


def test_lines_count_unique_cgroups_writes_and_failures():
    partial = dict(OK, failed_items=[{'cgroup': '/ct1', 'property': 'cpu.shares'}] * 2)
    assert summary({'a': OK, 'b': partial, 'c': SKIPPED}) == [
        'a: ok, 2 cgroups created, 3 properties changed, 0 failures',
        'b: ok, 2 cgroups created, 3 properties changed, 2 failures',
        'c: ok, no containers (cgroup_fleet_containers is empty)']


def test_check_mode_lines_say_would_be():
    assert summary({'a': OK}, check_mode=True) == [
        'a: ok, 2 cgroups would be created, 3 properties would be changed, 0 failures']


def test_failed_and_unreachable_hosts_give_their_error_trimmed():
    assert summary({'a': FAILED, 'b': UNREACHABLE, 'c': OK}) == [
        'a: FAILED, 0 cgroups created, 0 properties changed, 1 failure: Failed to restore: no such hierarchy',
        'b: UNREACHABLE, 0 cgroups created, 0 properties changed, 1 failure: ssh: port 22: Connection refused',
        'c: ok, 2 cgroups created, 3 properties changed, 0 failures']


def test_no_summary_while_later_batches_will_run():
    # a and b ran; c's batch is next; one failure of two is not above 100 %.
    assert summary({'a': OK, 'b': FAILED, 'c': None}, batch=['a', 'b']) == []


def test_the_last_batch_prints_every_host():
    lines = summary({'a': OK, 'b': OK}, batch=['b'])
    assert lines == ['a: ok, 2 cgroups created, 3 properties changed, 0 failures',
                     'b: ok, 2 cgroups created, 3 properties changed, 0 failures']


def test_a_batch_that_fails_whole_ends_the_run_and_later_hosts_are_not_run():
    assert summary({'a': OK, 'b': UNREACHABLE, 'c': None}, batch=['b']) == [
        'a: ok, 2 cgroups created, 3 properties changed, 0 failures',
        'b: UNREACHABLE, 0 cgroups created, 0 properties changed, 1 failure: ssh: port 22: Connection refused',
        'c: not run: the run stopped before its batch']


def test_max_fail_percentage_is_ansibles_rule_strictly_above():
    results = {'a': FAILED, 'b': OK, 'c': None}
    # one of two failed: 50 % is not above 50, the run goes on; above 49, it ends.
    assert summary(results, batch=['a', 'b'], max_fail_percentage=50) == []
    assert summary(results, batch=['a', 'b'], max_fail_percentage='49')[-1] == 'c: not run: the run stopped before its batch'
