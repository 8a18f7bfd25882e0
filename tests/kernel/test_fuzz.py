"""Fuzzed arguments (hypothesis) through the engine inside a sandbox: a clean
success or one clear error, never a traceback, never a write outside the
spec's cgroups. FUZZ_CASES sets the count (default 2000; release: 20000)."""

import os

from engine_run import run_engine


def test_fuzzed_arguments(sandbox):
    cases = int(os.environ.get('FUZZ_CASES', '2000'))
    os.makedirs(sandbox.path('memory', 'canary', 'inner'))
    with open(sandbox.path('memory', 'canary', 'memory.limit_in_bytes'), 'w') as handle:
        handle.write('7M')
    result = run_engine(sandbox, {'kind': 'fuzz', 'cases': cases})
    tally = result['tally']
    print('fuzz: %(cases)d cases: %(ok)d succeeded, %(refused)d refused, %(failed)d failed cleanly' % tally)
    assert tally['cases'] >= cases * 0.95, tally
    assert result['problem_count'] == 0, '\n'.join(result['problems'])
    assert tally['ok'] > 0 and tally['refused'] > 0, tally
