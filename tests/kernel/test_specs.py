"""cgroup_restore's specs: several containers in one call, on the real
kernel in a sandbox. Both restored in one plan (one rollback for both in
strict mode), check mode predicts it and writes nothing, and containers
whose cgroups overlap are refused by name before anything is written.
Every effect is read back from the kernel's files, from outside."""

from modrun import cgroups, read, run, run_calls, snapshot

CT1 = {'version': 1, 'cgroups': {
    'ct1': {'controllers': ['memory', 'pids'], 'properties': {'memory.limit_in_bytes': '64M', 'pids.max': 101}},
    'ct1/app': {'pids.max': 50, 'memory.limit_in_bytes': 100000000}}}
CT2 = {'version': 1, 'cgroups': {'ct2': {'controllers': ['pids'], 'properties': {'pids.max': 20}}}}
SPECS = {'ct1': CT1, 'ct2': CT2}


def test_two_containers_are_restored_in_one_call_and_check_mode_predicts_it(sandbox):
    predicted, restored, again = run_calls(sandbox, [
        ({'specs': SPECS}, True, True),
        ({'specs': SPECS}, False, False),
        ({'specs': SPECS}, False, False),
    ])
    for result in (predicted, restored, again):
        assert not result.get('failed'), result
    # check mode predicted what the real run then did (test_check_mode_writes_nothing:
    # and wrote nothing)
    assert predicted['changed'] and restored['changed']
    created = sorted((c['hierarchy'], c['cgroup']) for c in restored['created'])
    assert created == [('memory', 'ct1'), ('memory', 'ct1/app'), ('pids', 'ct1'), ('pids', 'ct1/app'),
                       ('pids', 'ct2')], restored['created']
    assert sorted((c['hierarchy'], c['cgroup']) for c in predicted['created']) == created
    assert sorted((w['cgroup'], w['property'], w['after']) for w in predicted['writes']) == \
        sorted((w['cgroup'], w['property'], w['after']) for w in restored['writes'])
    assert len(restored['writes']) == 5
    assert 'pids:ct2 pids.max = 20' in predicted['diff']['after']
    assert 'pids:ct2' not in predicted['diff']['before']
    # the kernel has both containers' limits
    assert read(sandbox, 'pids', 'ct1', 'pids.max') == '101'
    assert read(sandbox, 'memory', 'ct1', 'memory.limit_in_bytes') == str(64 << 20)
    assert read(sandbox, 'memory', 'ct1', 'app', 'memory.limit_in_bytes') == '99999744'
    assert read(sandbox, 'pids', 'ct1', 'app', 'pids.max') == '50'
    assert read(sandbox, 'pids', 'ct2', 'pids.max') == '20'
    # one undo record for both containers
    created = [c for s in restored['undo']['steps'] for c in s.get('cgroups', [s.get('cgroup')])]
    assert sorted(created) == ['ct1', 'ct1', 'ct1/app', 'ct1/app', 'ct2'], restored['undo']
    # converged: a second call finds nothing to do
    assert not again['changed'] and again['writes'] == [] and again['created'] == []


def test_check_mode_writes_nothing(sandbox):
    before = snapshot(sandbox)
    result = run(sandbox, check=True, diff=True, specs=SPECS)
    assert not result.get('failed') and result['changed'], result
    assert result['counts']['created'] == 5 and result['counts']['writes'] == 5, result['counts']
    assert result['undo']['steps'] == []
    assert snapshot(sandbox) == before
    assert cgroups(sandbox, 'pids') == [] and cgroups(sandbox, 'memory') == []


def test_containers_whose_cgroups_overlap_are_refused_by_name_and_nothing_is_written(sandbox):
    before = snapshot(sandbox)
    inside = {'version': 1, 'cgroups': {'ct1/app': {'controllers': ['pids'], 'properties': {'pids.max': 7}}}}
    root = {'version': 1, 'cgroups': {'/': {'pids.max': 7}}}
    same, nested, under_root = run_calls(sandbox, [
        ({'specs': {'ct1': CT1, 'ct2': CT1}}, False, False),
        ({'specs': {'ct1': CT1, 'ct2': inside}}, False, False),
        ({'specs': {'ct2': CT2, 'host': root, 'ct1': CT1}}, True, False),
    ])
    refused = ("Failed to restore: the containers' cgroups overlap (%s). Give each container its own cgroups; "
               "nothing was written.")
    assert same['failed'] and same['msg'] == refused % 'ct1 and ct2 both name the cgroup /ct1', same
    assert nested['failed'] and nested['msg'] == refused % "ct2's cgroup /ct1/app lies inside ct1's cgroup /ct1"
    # (in check mode too) every cgroup lies inside the root "/"; each pair is named
    assert under_root['failed'] and under_root['msg'] == refused % (
        "ct2's cgroup /ct2 lies inside host's cgroup /; ct1's cgroup /ct1 lies inside host's cgroup /")
    for result in (same, nested, under_root):
        assert result['changed'] is False
    assert snapshot(sandbox) == before
    assert cgroups(sandbox, 'pids') == [] and cgroups(sandbox, 'memory') == []


def test_a_failed_write_in_one_container_rolls_back_both_in_strict_mode(sandbox):
    # ct2/z names a CPU that its parent's cpuset does not have: the kernel
    # refuses it, after ct1 and ct2 were created (ct1 sorts and is planned first).
    bad = {'version': 1, 'cgroups': {
        'ct2': {'controllers': ['cpuset', 'pids'], 'properties': {'cpuset.cpus': '0', 'cpuset.mems': '0'}},
        'ct2/z': {'cpuset.cpus': '1', 'cpuset.mems': '0'}}}
    before = snapshot(sandbox)
    result = run(sandbox, specs={'ct1': CT1, 'ct2': bad})
    assert result['failed'] and "cpuset:ct2/z cpuset.cpus = '1'" in result['msg'], result
    assert 'Rolled back' in result['msg'] and result['rolled_back'] and not result['rollback_errors'], result
    assert any('ct1' in step for step in result['rolled_back']), result['rolled_back']
    assert snapshot(sandbox) == before
    for hierarchy in ('cpuset', 'memory', 'pids'):
        assert cgroups(sandbox, hierarchy) == [], hierarchy
