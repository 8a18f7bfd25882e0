"""The report option: `counts` returns how many cgroups were created, values
written and so on instead of every entry, and restores exactly what `full`
restores. Read back from the kernel's files on the host."""

import os

from modrun import read, run_calls

SPEC = {'version': 1, 'cgroups': {
    'ct': {'controllers': ['memory', 'pids'], 'properties': {'pids.max': 7, 'memory.limit_in_bytes': '32M'}},
    'ct/a': {'pids.max': 3},
    'ct/b': {'pids.max': 4},
}}
LISTS = ('created', 'writes', 'perms', 'removed')


def test_counts_restore_what_full_restores_and_return_only_how_many(sandbox):
    predicted, predicted_counts, restored, again = run_calls(sandbox, [
        ({'spec': SPEC}, True, False),
        ({'spec': SPEC, 'report': 'counts'}, True, False),
        ({'spec': SPEC, 'report': 'counts'}, False, False),
        ({'spec': SPEC}, False, False),
    ])
    for result in (predicted, predicted_counts, restored, again):
        assert not result.get('failed'), result
    # full: every entry, and the counts of them
    assert len(predicted['created']) == 6 and len(predicted['writes']) == 4, predicted
    expected = dict((name, len(predicted[name])) for name in LISTS)
    expected.update(mounted=0, failed_items=0)
    assert predicted['counts'] == expected
    # counts: the same numbers, in check mode and for real, and none of the lists
    for result in (predicted_counts, restored):
        assert result['changed'] and result['counts'] == expected, result
        assert not set(LISTS) & set(result), sorted(result)
        assert len(result['_stdout']) < len(predicted['_stdout'])
    # the undo record comes back whole: the run's mkdirs (in one hierarchy, one after another, one mkdirs step)
    steps = restored['undo']['steps']
    assert set(s['step'] for s in steps) <= {'mkdir', 'mkdirs'}, restored['undo']
    assert sum(len(s['cgroups']) if s['step'] == 'mkdirs' else 1 for s in steps) == 6, restored['undo']
    # the kernel has what the spec says
    assert read(sandbox, 'pids', 'ct', 'pids.max') == '7' and read(sandbox, 'pids', 'ct', 'a', 'pids.max') == '3'
    assert read(sandbox, 'pids', 'ct', 'b', 'pids.max') == '4'
    assert read(sandbox, 'memory', 'ct', 'memory.limit_in_bytes') == str(32 << 20)
    # a full re-run finds nothing to do, and says so in its lists and counts
    assert not again['changed'] and again['writes'] == [] and again['created'] == []
    assert set(again['counts'].values()) == {0}, again['counts']


def test_an_unknown_report_choice_is_refused_and_nothing_is_written(sandbox):
    (result,) = run_calls(sandbox, [({'spec': SPEC, 'report': 'some'}, False, False)])
    assert result['failed'] and 'report' in result['msg'], result
    assert not os.path.exists(sandbox.path('pids', 'ct'))
