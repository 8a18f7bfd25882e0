"""A spec from another host that names CPUs this host does not have: refused
by name with nothing written, or clamped with a warning (fit_destination=adapt).
The kernel's own files are read back from outside the sandbox."""

from modrun import cgroups, read, run, snapshot, warnings_of


def online_cpus():
    with open('/sys/devices/system/cpu/online') as handle:
        text = handle.read().strip()
    return text, max(int(part.split('-')[-1]) for part in text.split(','))


def spec_naming(cpus):
    return {'version': 1, 'cgroups': {
        'ct': {'controllers': ['cpuset', 'pids'],
               'properties': {'cpuset.cpus': cpus, 'cpuset.mems': '0', 'pids.max': 50}},
        'ct/app': {'cpuset.cpus': cpus, 'pids.max': 20}}}


def test_a_cpu_the_destination_lacks_is_refused_with_nothing_written(sandbox):
    online, last = online_cpus()
    spec = spec_naming('0-%d' % (last + 2))
    before = snapshot(sandbox)
    for mode in ('strict', 'opport'):
        result = run(sandbox, spec=spec, mode=mode)
        assert result.get('failed') and result['changed'] is False, result
        assert 'cpuset:ct cpuset.cpus' in result['msg'], result['msg']
        assert 'CPUs %d-%d' % (last + 1, last + 2) in result['msg'] and 'it has %s' % online in result['msg']
        assert 'fit_destination=adapt' in result['msg']
        assert snapshot(sandbox) == before
        assert cgroups(sandbox, 'cpuset') == [] and cgroups(sandbox, 'pids') == []


def test_adapt_clamps_the_cpuset_and_warns(sandbox):
    online, last = online_cpus()
    spec = spec_naming('0-%d' % (last + 2))
    result = run(sandbox, spec=spec, fit_destination='adapt')
    assert result['changed'] and not result.get('failed'), result
    assert read(sandbox, 'cpuset', 'ct', 'cpuset.cpus') == online
    assert read(sandbox, 'cpuset', 'ct', 'app', 'cpuset.cpus') == online
    assert read(sandbox, 'pids', 'ct', 'app', 'pids.max') == '20'
    adapted = [w for w in warnings_of(result) if w.startswith('Adapted to this host')]
    assert len(adapted) == 2, result.get('warnings')
    assert 'cpuset:ct cpuset.cpus: it names CPUs %d-%d' % (last + 1, last + 2) in adapted[0]
    assert adapted[0].endswith('restoring %s.' % online)
    # the adapted tree is what a second run finds: no change, same warning
    again = run(sandbox, spec=spec, fit_destination='adapt', mode='opport')
    assert again['changed'] is False and not again.get('failed'), again
    # and check mode predicts the clamped value
    check = run(sandbox, check=True, spec=spec_naming('%d-%d' % (last, last + 3)), fit_destination='adapt',
                mode='opport')
    assert check['changed'] and not check.get('failed'), check
    assert {w['property']: w['after'] for w in check['writes'] if w['cgroup'] == 'ct'} == {'cpuset.cpus': str(last)}
    assert read(sandbox, 'cpuset', 'ct', 'cpuset.cpus') == online  # check mode wrote nothing


def test_a_spec_that_fits_is_restored_without_a_warning(sandbox):
    online, _last = online_cpus()
    result = run(sandbox, spec=spec_naming(online))
    assert result['changed'] and not result.get('failed'), result
    assert not [w for w in warnings_of(result) if 'Adapted' in w]
    assert read(sandbox, 'cpuset', 'ct', 'app', 'cpuset.cpus') == online


def test_a_huge_page_size_the_kernel_lacks_is_refused_before_anything_else(sandbox):
    # This kernel has 2MB and 1GB pages, never 16GB ones on x86_64; the
    # refusal names the file and the sizes there are, and nothing is written.
    before = snapshot(sandbox)
    result = run(sandbox, spec={'version': 1, 'cgroups': {'ct': {'hugetlb.16GB.limit_in_bytes': '16G',
                                                                 'pids.max': 5}}})
    assert result.get('failed') and result['changed'] is False, result
    assert 'ct hugetlb.16GB' in result['msg'] and 'no 16GB huge pages' in result['msg'], result['msg']
    assert '2MB' in result['msg'] and 'fit_destination=adapt' in result['msg']
    assert snapshot(sandbox) == before
