"""systemd as PID 1 in the VM (tools/v2vm.py --systemd), reached over SSH
through vm_host.py's port forward, as the systemd tests of issue 14 need:
one VM for the module, booted by `vm_host.py start DIR --systemd`."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VM_HOST = os.path.join(REPO, 'extensions', 'molecule', 'vm_host.py')
sys.path.insert(0, os.path.dirname(VM_HOST))
import vm_host  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(scope='module')
def systemd_vm(tmp_path_factory):
    """(ssh argv prefix) of one booted systemd VM, stopped after the module."""
    directory = str(tmp_path_factory.mktemp('crtest-systemd-vm'))
    started = subprocess.run([sys.executable, VM_HOST, 'start', directory, '--systemd'],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
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
    yield ssh
    stopped = subprocess.run([sys.executable, VM_HOST, 'stop', directory], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert stopped.returncode == 0, stopped.stdout
    assert not os.path.exists(os.path.join(directory, 'vm.json'))


def test_systemd_is_pid_1_and_running(systemd_vm):
    assert systemd_vm('cat /proc/1/comm').stdout.strip() == 'systemd'
    state = systemd_vm('systemctl is-system-running --wait').stdout.strip()
    assert state in ('running', 'degraded'), systemd_vm('systemctl --failed --no-pager').stdout


def test_ssh_is_ssh_service_with_the_vms_own_config(systemd_vm):
    # The login itself went through ssh.service's sshd, with this VM's key.
    assert systemd_vm('systemctl is-active ssh.service').stdout.strip() == 'active'
    cgroup = systemd_vm('cat /proc/$PPID/cgroup').stdout.strip()
    assert cgroup.startswith('0::/system.slice/ssh.service'), cgroup
    cmdline = systemd_vm("tr '\\0' ' ' < /proc/$(systemctl show -P MainPID ssh.service)/cmdline").stdout
    assert '-f ' in cmdline and 'sshd_config' in cmdline and '/etc/ssh/' not in cmdline, cmdline


def test_cgroup2_is_systemds(systemd_vm):
    mounts = systemd_vm('findmnt -n -o FSTYPE /sys/fs/cgroup').stdout.strip()
    assert mounts == 'cgroup2'
    scope = systemd_vm('systemd-run --scope -p Delegate=yes -p TasksMax=9 --unit crtest-probe.scope '
                       'cat /sys/fs/cgroup/system.slice/crtest-probe.scope/pids.max')
    assert scope.stdout.strip() == '9', scope.stderr
