"""Concurrent calls on one host are serialised by the host lock."""

import os
import threading

from modrun import hold_lock, read, run, run_calls


def test_a_waiting_call_is_told_and_then_runs(sandbox):
    ready = threading.Event()
    holder = threading.Thread(target=hold_lock, args=(sandbox, 0, ready, 1))
    holder.start()
    ready.wait()
    result = run(sandbox, spec={'version': 1, 'cgroups': {'ct': {'pids.max': 5}}})
    holder.join()
    assert result['changed'] and result['lock_waited'] >= 0.4, result
    assert any('Waited' in str(w) and 'host lock' in str(w) for w in result.get('warnings', [])), result
    assert read(sandbox, 'pids', 'ct', 'pids.max') == '5'


def test_lock_timeout_fails_cleanly_and_writes_nothing(sandbox):
    ready = threading.Event()
    holder = threading.Thread(target=hold_lock, args=(sandbox, 0, ready, 1, 4))
    holder.start()
    ready.wait()
    result = run(sandbox, spec={'version': 1, 'cgroups': {'ct': {'pids.max': 5}}}, lock_timeout=1)
    holder.join()
    assert result['failed'] and 'host lock' in result['msg'] and 'Nothing was written' in result['msg'], result
    assert not os.path.exists(sandbox.path('pids', 'ct'))


def test_two_concurrent_restores_both_succeed(sandbox):
    # Two processes in two namespaces sharing the sandbox's /run/lock.
    def spec(n):
        return {'version': 1, 'cgroups': {'ct%d' % n: {'pids.max': n, 'memory.limit_in_bytes': '%dM' % (n * 16)},
                                          'ct%d/a' % n: {'pids.max': n}}}
    results = [None, None]

    def call(i):
        results[i] = run_calls(sandbox, [(dict(spec=spec(i + 1)), False, False)])[0]
    threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r['changed'] and not r.get('failed') for r in results), results
    assert read(sandbox, 'pids', 'ct2', 'a', 'pids.max') == '2'
    assert read(sandbox, 'memory', 'ct1', 'memory.limit_in_bytes') == str(16 << 20)
