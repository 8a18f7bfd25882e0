"""Shared test setup: the collection on sys.path, the cgroup sandbox fixture,
and the session's check for anything left behind."""

import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(REPO, 'build', 'collections')
sys.path.insert(0, COLLECTIONS)
sys.path.insert(0, os.path.join(REPO, 'tools'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'lib'))

import cgroup_sandbox  # noqa: E402

TEST_PREFIX = 'crtest-'


def pytest_configure(config):
    config.addinivalue_line('markers', 'kernel: needs root and real cgroup v1 hierarchies')
    config.addinivalue_line('markers', 'alone: runs after the parallel tests, with no other test beside it')
    if not os.path.isdir(os.path.join(COLLECTIONS, 'ansible_collections', 'checkpoint_restore', 'cgroups')):
        raise pytest.UsageError('run scripts/setup first: build/collections is missing')


@pytest.fixture
def sandbox():
    """A fresh, uniquely named sandbox subtree in every host hierarchy;
    removed afterwards, and the test fails if anything is left."""
    if os.geteuid() != 0:
        pytest.skip('real-kernel tests need root')
    box = cgroup_sandbox.Sandbox(prefix=TEST_PREFIX).create()
    try:
        yield box
    finally:
        left = box.destroy()
        assert not left, 'sandbox left behind: %s' % left


def pytest_sessionfinish(session, exitstatus):
    # scripts/test sets CGROUP_TESTS_NO_SKIP: on the machines it runs on,
    # every test must run, so a skipped test fails the session (pytest's -rs
    # lists the skips and their reasons).
    reporter = session.config.pluginmanager.get_plugin('terminalreporter')
    skipped = reporter.stats.get('skipped', []) if reporter is not None else []
    if skipped and os.environ.get('CGROUP_TESTS_NO_SKIP'):
        sys.stderr.write('\nSKIPPED where every test must run (CGROUP_TESTS_NO_SKIP): %d test(s), listed above\n'
                         % len(skipped))
        session.exitstatus = 1
    if os.geteuid() != 0:
        return
    # Only this session's sandboxes (named with its pid): other test runs may be going on.
    left = cgroup_sandbox.leftovers('%s%d-' % (TEST_PREFIX, os.getpid()))
    if left:
        sys.stderr.write('\nLEFT BEHIND on this host: %s\n' % ', '.join(left))
        session.exitstatus = 1
