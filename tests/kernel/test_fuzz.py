"""Fuzzed arguments (hypothesis) through the engine inside a sandbox: a clean
success or one clear error, never a traceback, never a write outside the
spec's cgroups. FUZZ_CASES sets the count (default 2000; release: 20000)."""

import os

from engine_run import run_engine
from fuzz_cases import CATEGORIES


def test_fuzzed_arguments(sandbox):
    cases = int(os.environ.get('FUZZ_CASES', '2000'))
    os.makedirs(sandbox.path('memory', 'canary', 'inner'))
    with open(sandbox.path('memory', 'canary', 'memory.limit_in_bytes'), 'w') as handle:
        handle.write('7M')
    result = run_engine(sandbox, {'kind': 'fuzz', 'cases': cases})
    tally = result['tally']
    print('fuzz: %(cases)d cases: %(ok)d succeeded, %(refused)d refused, %(failed)d failed cleanly '
          '(%(rollback_errors)d with a rollback error reported)' % tally)
    print('fuzz: cases per input category: %s' % ', '.join(
        '%s %d' % (name, result['categories'][name]) for name in CATEGORIES))
    for error in result['rollback_errors']:
        print('fuzz: rollback error reported: %s' % error)
    assert tally['cases'] >= cases, tally
    assert result['problem_count'] == 0, '\n'.join(result['problems'])
    assert tally['ok'] > 0 and tally['refused'] > 0 and tally['failed'] > 0, tally
    missed = [name for name in CATEGORIES if not result['categories'][name]]
    assert not missed, 'input categories never generated: %s' % missed
