"""Tests that run in a throwaway VM on a real cgroup v2 kernel (tools/v2vm.py).

The `v2vm` fixture boots the VM and runs a command in it. A VM that cannot
start fails the test with the console's last lines; it is never skipped.
Every boot's time is listed at the end of the session."""

import json
import os
import subprocess
import sys

import pytest

import v2vm as v2vm_tool  # tools/ is on sys.path through tests/conftest.py

import criu_table

BOOTS = []
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VM_HOST = os.path.join(REPO, 'extensions', 'molecule', 'vm_host.py')
sys.path.insert(0, os.path.dirname(VM_HOST))
import vm_host  # noqa: E402  pylint: disable=wrong-import-position


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


@pytest.fixture(scope='session')
def systemd_vm(tmp_path_factory):
    """ssh(command) -> CompletedProcess in one booted systemd VM for the session
    (every systemd test module shares it), stopped at its end; ssh.directory is the VM's directory (vm.json, vm/). With
    CRTEST_SYSTEMD_VM set to the directory of a VM that `vm_host.py start DIR
    --systemd` booted, that VM is used and left running (a development loop)."""
    reuse = os.environ.get('CRTEST_SYSTEMD_VM')
    directory = reuse or str(tmp_path_factory.mktemp('crtest-systemd-vm'))
    if reuse:
        started = subprocess.CompletedProcess([], 0, '')
    else:
        started = subprocess.run([sys.executable, VM_HOST, 'start', directory, '--systemd'], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    if started.returncode != 0:
        subprocess.run([sys.executable, VM_HOST, 'stop', directory], check=False)
        pytest.fail('vm_host start --systemd: %s' % started.stdout, pytrace=False)
    with open(os.path.join(directory, 'vm.json')) as handle:
        state = json.load(handle)
    vmdir = os.path.join(directory, 'vm')

    def ssh(command):
        return subprocess.run(vm_host.ssh_argv(vmdir, state, command), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                              timeout=120, check=False)
    ssh.directory = directory
    ssh.state = state

    def stop():
        """Once: the VM is stopped after the last test that uses it
        (pytest_runtest_teardown), not at the session's end; idle under
        emulation, systemd would take CPU from the VMs of later tests."""
        if reuse or not os.path.exists(os.path.join(directory, 'vm.json')):
            return
        stopped = subprocess.run([sys.executable, VM_HOST, 'stop', directory], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        assert stopped.returncode == 0, stopped.stdout
        assert not os.path.exists(os.path.join(directory, 'vm.json'))
    _STOPS['systemd_vm'] = stop
    yield ssh
    _STOPS.pop('systemd_vm', None)
    stop()


# Session fixtures that boot a VM: name -> stop(), called after the last test
# that uses the fixture.
_STOPS = {}


@pytest.hookimpl(trylast=True)  # after the item's own fixtures are torn down
def pytest_runtest_teardown(item, nextitem):
    for name in list(_STOPS):
        if name in item.fixturenames and (nextitem is None or name not in nextitem.fixturenames):
            _STOPS.pop(name)()


def pytest_terminal_summary(terminalreporter):
    if BOOTS:
        terminalreporter.section('v2vm boot times')
        for command, boot, total in BOOTS:
            terminalreporter.write_line('boot %5.1fs  total %5.1fs  %s' % (boot, total, command))
    if criu_table.RUNS:
        terminalreporter.section('CRIU alone and with the collection (test_criu.py)')
        for line in criu_table.render():
            terminalreporter.write_line(line)
