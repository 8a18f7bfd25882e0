"""systemd as PID 1 in the VM (tools/v2vm.py --systemd), reached over SSH
through vm_host.py's port forward, as the systemd tests of issue 14 need:
one VM for the module, booted by `vm_host.py start DIR --systemd`."""

# The systemd_vm fixture is in conftest.py (shared with test_systemd_unit.py).


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
