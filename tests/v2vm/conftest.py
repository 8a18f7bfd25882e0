"""Tests that run in a throwaway VM on a real cgroup v2 kernel (tools/v2vm.py).

The `v2vm` fixture boots the VM and runs a command in it. A VM that cannot
start fails the test with the console's last lines; it is never skipped.
Every boot's time is listed at the end of the session."""

import os

import pytest

import v2vm as v2vm_tool  # tools/ is on sys.path through tests/conftest.py

import criu_table

BOOTS = []


def pytest_configure(config):
    config.addinivalue_line('markers', 'v2vm: boots a cgroup v2 kernel in qemu (tools/v2vm.py)')


def pytest_collection_modifyitems(items):
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        if str(item.fspath).startswith(here + os.sep):
            item.add_marker('v2vm')


@pytest.fixture(scope='session')
def v2vm():
    """run(argv, **kwargs) -> v2vm.Result; fails the test if the VM does not."""
    def run(argv, **kwargs):
        try:
            result = v2vm_tool.run(argv, **kwargs)
        except v2vm_tool.VMError as exc:
            pytest.fail('v2vm: %s' % exc, pytrace=False)
        BOOTS.append((' '.join(argv)[:60], result.boot_seconds, result.total_seconds))
        return result
    return run


def pytest_terminal_summary(terminalreporter):
    if BOOTS:
        terminalreporter.section('v2vm boot times')
        for command, boot, total in BOOTS:
            terminalreporter.write_line('boot %5.1fs  total %5.1fs  %s' % (boot, total, command))
    if criu_table.RUNS:
        terminalreporter.section('CRIU alone and with the collection (test_criu.py)')
        for line in criu_table.render():
            terminalreporter.write_line(line)
