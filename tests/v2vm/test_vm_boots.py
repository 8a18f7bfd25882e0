"""The v2 VM itself: it boots Debian's kernel, has cgroup2 with every
controller at /sys/fs/cgroup, runs this machine's Python with the repo in
view, returns the command's output and exit code, and fails loudly (killing
its qemu) when it cannot get there in time."""

import errno
import json
import os
import subprocess
import sys

import pytest

import v2vm as v2vm_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Runs in the VM with this machine's Python; reads what the kernel shows and
# writes it to the run directory. The test asserts on it on the host.
PROBE = r'''
import errno, json, os, subprocess, sys

def read(path):
    with open(path) as handle:
        return handle.read().strip()

out = {'executable': sys.executable, 'version': sys.version, 'release': os.uname().release}
with open('/proc/self/mountinfo') as handle:
    for line in handle:
        fields = line.split()
        if fields[4] == '/sys/fs/cgroup':
            out['cgroup_fstype'] = fields[fields.index('-') + 1]
out['controllers'] = read('/sys/fs/cgroup/cgroup.controllers').split()
out['subtree_control'] = read('/sys/fs/cgroup/cgroup.subtree_control').split()

box = '/sys/fs/cgroup/v2vm-probe-%d' % os.getpid()
os.mkdir(box)
try:
    out['box_controllers'] = read(box + '/cgroup.controllers').split()
    out['memory_max'] = {}
    for value in ('100000000', '512M', 'max'):
        with open(box + '/memory.max', 'w') as handle:
            handle.write(value)
        out['memory_max'][value] = read(box + '/memory.max')
    with open(box + '/cpu.max', 'w') as handle:
        handle.write('50000 100000')
    out['cpu_max'] = read(box + '/cpu.max')
finally:
    os.rmdir(box)
out['box_removed'] = not os.path.exists(box)

out['python3'] = subprocess.run(['python3', '-c', 'import sys; print(sys.version)'],
                                stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
def try_write(path):
    try:
        open(path, 'w').close()
        return 'written'
    except OSError as exc:
        return errno.errorcode[exc.errno]

out['root_write'] = try_write('/v2vm-write-probe')
# EROFS, or (for a checkout under /tmp) written to the VM's overlay only.
out['repo_write'] = try_write(os.path.join(sys.argv[1], 'v2vm-write-probe'))
with open('/tmp/v2vm-write-probe', 'w') as handle:
    handle.write('ok')
out['tmp_write'] = read('/tmp/v2vm-write-probe')
# A host file under /tmp: seen in the VM, changed only in the VM.
out['host_tmp_file'] = read(sys.argv[2])
with open(sys.argv[2], 'w') as handle:
    handle.write('changed in the VM')
out['host_tmp_file_after'] = read(sys.argv[2])

with open(os.path.join(os.environ['V2VM_SHARE'], 'probe.json'), 'w') as handle:
    json.dump(out, handle)
'''


def kernel_has(version, option):
    with open('/boot/config-%s' % version) as handle:
        return ('%s=y\n' % option) in handle.read()


@pytest.fixture(scope='module')
def probe(v2vm, tmp_path_factory):
    share = tmp_path_factory.mktemp('probe')
    (share / 'probe.py').write_text(PROBE)
    host_file = tmp_path_factory.mktemp('host-tmp') / 'file'
    host_file.write_text('from the host')
    result = v2vm([sys.executable, str(share / 'probe.py'), REPO, str(host_file)],
                  share=str(share), timeout=300)
    assert result.returncode == 0, result.output
    with open(str(share / 'probe.json')) as handle:
        found = json.load(handle)
    found['host_tmp_file_on_host'] = host_file.read_text()
    return found


def test_boots_debian_kernel_not_the_host_one(probe):
    version = v2vm_tool.find_kernel()[0]
    assert probe['release'] == version
    assert probe['release'] != os.uname().release


def test_cgroup2_with_every_controller_enabled(probe):
    version = v2vm_tool.find_kernel()[0]
    expected = {'cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids'}
    if kernel_has(version, 'CONFIG_CGROUP_RDMA'):
        expected.add('rdma')
    if kernel_has(version, 'CONFIG_CGROUP_MISC'):
        expected.add('misc')
    assert probe['cgroup_fstype'] == 'cgroup2'
    assert expected <= set(probe['controllers'])
    assert set(probe['subtree_control']) == set(probe['controllers'])
    assert set(probe['box_controllers']) == set(probe['controllers'])


def test_sandbox_cgroup_limits_read_back_as_the_kernel_normalises(probe):
    assert probe['memory_max'] == {'100000000': '99999744', '512M': '536870912', 'max': 'max'}
    assert probe['cpu_max'] == '50000 100000'
    assert probe['box_removed']


def test_runs_this_machines_python_with_a_read_only_root(probe):
    assert probe['executable'] == sys.executable
    assert probe['version'] == sys.version
    host_python3 = subprocess.run(['python3', '-c', 'import sys; print(sys.version)'],
                                  stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
    assert probe['python3'] == host_python3
    assert probe['root_write'] == errno.errorcode[errno.EROFS]
    assert not os.path.exists('/v2vm-write-probe')
    assert probe['repo_write'] in (errno.errorcode[errno.EROFS], 'written')
    assert not os.path.exists(os.path.join(REPO, 'v2vm-write-probe'))
    assert probe['tmp_write'] == 'ok'
    assert not os.path.exists('/tmp/v2vm-write-probe')


def test_tmp_shows_the_hosts_files_and_keeps_the_vms_changes(probe):
    assert probe['host_tmp_file'] == 'from the host'
    assert probe['host_tmp_file_after'] == 'changed in the VM'
    assert probe['host_tmp_file_on_host'] == 'from the host'


def test_output_exit_code_and_files_come_back(v2vm, tmp_path):
    (tmp_path / 'from-host').write_text('hello from the host\n')
    script = ('cat "$V2VM_SHARE/from-host"; echo to-stderr >&2; '
              'uname -r > "$V2VM_SHARE/from-vm"; printf "no newline"; exit 7')
    result = v2vm(['sh', '-c', script], share=str(tmp_path), timeout=300)
    assert result.returncode == 7
    assert result.output == 'hello from the host\nto-stderr\nno newline'
    assert (tmp_path / 'from-vm').read_text().strip() == v2vm_tool.find_kernel()[0]
    assert 0 < result.boot_seconds <= result.total_seconds


def qemu_processes_for(share):
    """PIDs of processes whose command line names this run's share."""
    found = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                cmdline = handle.read()
        except OSError:
            continue
        if ('path=%s,' % share).encode() in cmdline:
            found.append(pid)
    return found


def test_a_vm_that_does_not_reach_the_command_fails_and_is_killed(tmp_path):
    with pytest.raises(v2vm_tool.VMError, match='no start of the command after'):
        v2vm_tool.run(['true'], share=str(tmp_path), boot_timeout=0.5)
    assert qemu_processes_for(str(tmp_path)) == []


def test_initramfs_is_cached_per_kernel_version():
    version = v2vm_tool.find_kernel()[0]
    first = v2vm_tool.build_initramfs(version)
    mtime = os.stat(first).st_mtime_ns
    assert version in os.path.basename(first)
    assert v2vm_tool.build_initramfs(version) == first
    assert os.stat(first).st_mtime_ns == mtime


def test_the_cgroup_layout_and_the_criu_modules_reach_the_kernel_command_line():
    cmd = v2vm_tool.qemu_command('vmlinux', 'initrd', '/share', 'token', cgroup='v1',
                                 modules=v2vm_tool.CRIU_MODULES)
    append = cmd[cmd.index('-append') + 1].split()
    assert 'v2vm_cgroup=v1' in append
    assert 'v2vm_modules=' + ','.join(v2vm_tool.CRIU_MODULES) in append
    default = v2vm_tool.qemu_command('vmlinux', 'initrd', '/share', 'token')
    assert {'v2vm_cgroup=v2', 'v2vm_modules='} <= set(default[default.index('-append') + 1].split())
    with pytest.raises(ValueError, match='cgroup layout'):
        v2vm_tool.qemu_command('vmlinux', 'initrd', '/share', 'token', cgroup='hybrid')


def test_every_criu_module_is_in_the_kernel():
    version = v2vm_tool.find_kernel()[0]
    assert v2vm_tool.module_load_order(version, v2vm_tool.CRIU_MODULES)
