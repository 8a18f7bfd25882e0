"""Fault injection at every step of a plan of more than 30 actions, through
the apply layer's seam: strict and bind leave the sandbox exactly as it was;
in opport, the reported failed items are exactly the settings, property by
property, that differ from a clean run's in an independent listing, and the
rest is applied."""

import os
import re

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.apply import _UNDO_RETRIES
from engine_run import run_engine

SPEC = {'version': 1, 'cgroups': {
    'ct': {'controllers': ['cpu', 'memory', 'pids', 'cpuset'],
           'perms': {'mode': '0750', 'uid': 1000, 'gid': 1000},
           'file_perms': {'cgroup.procs': {'mode': '0664', 'uid': 1000}},
           'properties': {'memory.limit_in_bytes': '256M', 'cpu.shares': 700, 'pids.max': 300,
                          'cpuset.cpus': '0', 'cpuset.mems': '0', 'cpu.cfs_period_us': 100000,
                          'cpu.cfs_quota_us': 80000}},
    'ct/a': {'memory.limit_in_bytes': '128M', 'cpu.shares': 300, 'pids.max': 100, 'cpuset.cpus': '0'},
    'ct/b': {'memory.limit_in_bytes': '64M', 'cpu.cfs_quota_us': 40000, 'pids.max': 50},
    'ct/leaf': {'memory.limit_in_bytes': '32M'},
    'ct/a/deep': {'pids.max': 10, 'memory.limit_in_bytes': '16M'},
}}


def _premount(sandbox):
    """What a premount leaves for bind mode: the top-level cgroup with old limits."""
    for hierarchy in ('cpu', 'memory', 'pids', 'cpuset'):
        os.mkdir(sandbox.path(hierarchy, 'ct'))
    for hierarchy, name, value in (('memory', 'memory.limit_in_bytes', '1G'), ('cpu', 'cpu.shares', '1024'),
                                   ('pids', 'pids.max', '77'), ('cpuset', 'cpuset.cpus', '0-1'),
                                   ('cpuset', 'cpuset.mems', '0')):
        with open(sandbox.path(hierarchy, 'ct', name), 'w') as handle:
            handle.write(value)


def _check(summary, mode):
    failures = [r for r in summary['results'] if not r['ok']]
    assert summary['actions'] >= 30, summary['actions']
    assert len(summary['results']) == summary['actions']
    assert not failures, failures[:3]
    print('%s: %d steps injected, %d verified' % (mode, summary['actions'], len(summary['results'])))
    if mode == 'opport':
        results = summary['results']
        print('opport: %d failed items reported, matching %d settings left undone (per property, by the '
              'independent reader); %d duplicate skipped items; %d items failed after the same call had '
              'already applied their setting' % (
                  sum(len(r['failed_items']) for r in results), sum(r['settings_undone'] for r in results),
                  sum(r['duplicate_skips'] for r in results), sum(r['failed_after_applied'] for r in results)))


def test_strict_every_step(sandbox):
    _check(run_engine(sandbox, {'kind': 'campaign', 'params': {'spec': SPEC, 'mode': 'strict', 'root': 'outer'}}),
           'strict')


def test_bind_every_step(sandbox):
    _premount(sandbox)
    _check(run_engine(sandbox, {'kind': 'campaign', 'params': {'spec': SPEC, 'mode': 'bind'}}), 'bind')


def test_opport_every_step(sandbox):
    _premount(sandbox)
    _check(run_engine(sandbox, {'kind': 'campaign', 'params': {'spec': SPEC, 'mode': 'opport'}}), 'opport')


def test_rollback_failures_are_reported(sandbox):
    # At step 30 a task has joined ct/leaf (created by this call): rollback's
    # rmdir is refused with EBUSY, retried with backoff, then reported.
    result = run_engine(sandbox, {'kind': 'rollback_busy', 'step': 30, 'params': {'spec': SPEC}})
    assert result['outcome'] == 'failed', result
    busy = [e for e in result['rollback_errors'] if 'ct/leaf' in e]
    assert busy, result
    # every attempt was made, each after its backoff delay
    attempts = len(_UNDO_RETRIES) + 1
    for error in busy:
        found = re.search(r'rmdir refused with EBUSY after (\d+) attempts over ([\d.]+) s', error)
        assert found and int(found.group(1)) == attempts, error
        assert float(found.group(2)) >= sum(_UNDO_RETRIES) - 0.005, error
    # measured from outside too: the call lasted at least the backoff of each busy cgroup
    assert result['seconds'] >= len(busy) * sum(_UNDO_RETRIES), result
    assert 'Rollback could not undo %d step(s)' % len(result['rollback_errors']) in result['msg']
    assert busy[0] in result['msg']
    print('rollback: %d busy cgroups, each: %s' % (len(busy), busy[0]))
