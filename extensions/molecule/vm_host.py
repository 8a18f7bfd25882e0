#!/usr/bin/env python
"""The VM host of the Molecule scenarios premount_v2 and criu: a throwaway VM.

`start DIR [--cgroup v1|v2] [--criu]` boots Debian's kernel in qemu
(tools/v2vm.py: pure cgroup v2 unless --cgroup v1; with --criu, what CRIU's
feature checks need of the kernel;
this machine's root filesystem shared read-only, /run and /tmp writable) with
an sshd as its command, reached only from 127.0.0.1:<a free port> on this
machine. The client key, the host key and the sshd configuration are made
here for this VM alone, in DIR/vm. It waits until Ansible could log in, then
writes DIR/vm.json (the port, the PIDs) and DIR/known_hosts.

`start DIR --systemd` boots systemd as PID 1 instead (tools/v2vm.py
--systemd): the sshd is Debian's ssh.service, run with this VM's
configuration, and the command only waits for `stop`.

`stop DIR` ends the sshd inside (with --systemd: the command) (the VM then powers off), waits for the
v2vm.py process it started, by its PID, and falls back to SIGTERM (which makes
v2vm.py kill its qemu). It fails if the qemu process is still there.

Nothing is created on this machine's own cgroups or mounts: everything the
scenario does happens inside the VM, which is gone afterwards.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, 'tools'))
from fleet import SSHD, SSHD_CONFIG, start_time  # noqa: E402  pylint: disable=wrong-import-position
from v2vm import GUEST_ADDRESS, SYSTEMD_BOOT_TIMEOUT  # noqa: E402  pylint: disable=wrong-import-position

V2VM = os.path.join(REPO, 'tools', 'v2vm.py')
GUEST_PORT = 22
BOOT_SECONDS = 300
# With --systemd, the VM's command waits for this file; `stop` makes it.
STOP_FILE = '/run/v2vm-stop'
# The VM powers itself off after this, should `stop` never come.
LIFETIME_SECONDS = 3600


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def ssh_argv(vmdir, state, *command):
    return ['ssh', '-q', '-p', str(state['port']), '-i', os.path.join(vmdir, 'id_ed25519'),
            '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'ConnectTimeout=10',
            '-o', 'UserKnownHostsFile=%s' % os.path.join(vmdir, 'known_hosts'),
            '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'StrictHostKeyChecking=yes',
            'root@127.0.0.1'] + list(command)


def children(pid):
    try:
        with open('/proc/%d/task/%d/children' % (pid, pid)) as handle:
            return [int(child) for child in handle.read().split()]
    except OSError:
        return []


def alive(pid, started):
    return started is not None and start_time(pid) == started


def make_ssh_files(vmdir, port):
    """The client key, the host key, the guest sshd's configuration and the
    known_hosts line of 127.0.0.1:port, made in vmdir for this VM alone."""
    shutil.rmtree(vmdir, ignore_errors=True)
    os.makedirs(vmdir, mode=0o700)
    keygen = ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'v2vm-host']
    subprocess.run(keygen + ['-f', os.path.join(vmdir, 'id_ed25519')], check=True)
    subprocess.run(keygen + ['-f', os.path.join(vmdir, 'ssh_host_ed25519_key')], check=True)
    with open(os.path.join(vmdir, 'sshd_config'), 'w') as handle:
        # tools/fleet.py's sshd settings; a PID file, which `stop` reads inside the VM.
        handle.write(SSHD_CONFIG.format(address=GUEST_ADDRESS, port=GUEST_PORT, pid_file='/run/sshd.pid',
                                        host_key=os.path.join(vmdir, 'ssh_host_ed25519_key'),
                                        authorized_keys=os.path.join(vmdir, 'id_ed25519.pub')))
    with open(os.path.join(vmdir, 'ssh_host_ed25519_key.pub')) as handle:
        host_key = ' '.join(handle.read().split()[:2])
    with open(os.path.join(vmdir, 'known_hosts'), 'w') as handle:
        handle.write('[127.0.0.1]:%d %s\n' % (port, host_key))


def guest_sshd(vmdir, foreground=True):
    """The shell command that starts the guest's sshd (plain boot): in the
    foreground (it is the VM's command) or as a daemon (the command goes on).
    Root's shell start-up files (this machine's, shared read-only) may run
    slow tools such as pyenv on every login: the guest sees them empty.
    (With systemd, the overlay has them empty: tools/v2vm/init.)"""
    return ('for f in .bashrc .bash_profile .bash_login .profile; do '
            '[ -f /root/$f ] && mount --bind /dev/null /root/$f; done; '
            'mkdir -p /run/sshd && %s%s %s-e -f %s/sshd_config'
            % ('exec ' if foreground else '', SSHD, '-D ' if foreground else '', vmdir))


def inventory_vars(vmdir, port):
    """Ansible's connection variables for the VM behind 127.0.0.1:port."""
    return {
        'ansible_host': '127.0.0.1', 'ansible_port': port, 'ansible_user': 'root',
        'ansible_ssh_private_key_file': os.path.join(vmdir, 'id_ed25519'),
        # Debian's own Python, as on a container host.
        'ansible_python_interpreter': '/usr/bin/python3',
        'ansible_remote_tmp': '/tmp/.ansible-remote',
        'ansible_ssh_pipelining': True,
        # An sshd under emulation on a busy machine may take long to answer.
        'ansible_timeout': 60,
        # One master connection for all tasks, as Ansible's default ssh_args
        # keep it, which matters: a key exchange is slow under emulation.
        # Without their -C: compressing on loopback costs the emulated CPU.
        'ansible_ssh_args': '-o ControlMaster=auto -o ControlPersist=120s',
        'ansible_ssh_common_args': ('-o UserKnownHostsFile=%s -o GlobalKnownHostsFile=/dev/null '
                                    '-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes'
                                    % os.path.join(vmdir, 'known_hosts')),
    }


def wait_for_login(vmdir, port, limit, alive_check=lambda: True):
    """Until `ssh true` works (True), the limit passes or alive_check fails (False)."""
    begun = time.time()
    while time.time() - begun < limit and alive_check():
        if subprocess.run(ssh_argv(vmdir, {'port': port}, 'true'), stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode == 0:
            return True
        time.sleep(2)
    return False


def start(directory, cgroup='v2', criu=False, systemd=False):
    vmdir = os.path.join(directory, 'vm')
    if os.path.exists(os.path.join(directory, 'vm.json')):
        sys.exit('vm_host: a VM of this scenario is running already (%s); stop it first' % directory)
    port = free_port()
    make_ssh_files(vmdir, port)
    command = guest_sshd(vmdir)
    extra = []
    if systemd:
        command = 'while [ ! -e %s ]; do sleep 2; done' % STOP_FILE
        extra = ['--systemd', '--sshd-config', os.path.join(vmdir, 'sshd_config')]
    with open(os.path.join(vmdir, 'console.log'), 'ab') as log:
        proc = subprocess.Popen([sys.executable, V2VM, 'run', '--share', vmdir, '--ssh-port', str(port),
                                 '--timeout', str(LIFETIME_SECONDS), '--cgroup', cgroup]
                                + (['--criu'] if criu else []) + extra + ['--', 'sh', '-c', command],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                # systemd's guest may not show this checkout's path (a
                                # host /tmp): its command needs none.
                                cwd='/' if systemd else None)
    state = {'port': port, 'pid': proc.pid, 'start_time': start_time(proc.pid), 'systemd': systemd}
    with open(os.path.join(directory, 'vm.json'), 'w') as handle:
        json.dump(state, handle)
    # systemd as PID 1 takes minutes to reach ssh.service under emulation.
    limit = SYSTEMD_BOOT_TIMEOUT if systemd else BOOT_SECONDS
    begun = time.time()
    if not wait_for_login(vmdir, port, limit, alive_check=lambda: proc.poll() is None):
        if proc.poll() is not None:
            sys.exit('vm_host: the VM ended (exit code %s) before sshd answered; see %s'
                     % (proc.returncode, os.path.join(vmdir, 'console.log')))
        stop(directory)
        sys.exit('vm_host: no ssh login after %ds; see %s' % (limit, os.path.join(vmdir, 'console.log')))
    qemu = children(proc.pid)
    state.update(qemu=[(pid, start_time(pid)) for pid in qemu], boot_seconds=round(time.time() - begun, 1))
    with open(os.path.join(directory, 'vm.json'), 'w') as handle:
        json.dump(state, handle)
    print(json.dumps({'port': port, 'boot_seconds': state['boot_seconds']}))


def stop(directory):
    path = os.path.join(directory, 'vm.json')
    if not os.path.exists(path):
        return
    vmdir = os.path.join(directory, 'vm')
    with open(path) as handle:
        state = json.load(handle)
    pid, started = state['pid'], state['start_time']
    if alive(pid, started):
        ending = 'touch %s' % STOP_FILE if state.get('systemd') else 'kill $(cat /run/sshd.pid)'
        subprocess.run(ssh_argv(vmdir, state, ending), stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60, check=False)
        deadline = time.time() + 60
        while alive(pid, started) and time.time() < deadline:
            _reap(pid)
            time.sleep(0.5)
    if alive(pid, started):
        os.kill(pid, signal.SIGTERM)
        deadline = time.time() + 30
        while alive(pid, started) and time.time() < deadline:
            _reap(pid)
            time.sleep(0.5)
    left = [qpid for qpid, qstart in state.get('qemu', []) if alive(qpid, qstart)]
    if alive(pid, started) or left:
        sys.exit('vm_host: the VM is still running (v2vm.py PID %d, qemu %s)' % (pid, left))
    os.unlink(path)


def _reap(pid):
    """Collect the exit status if the process is our child (stop called from start)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def main(argv):
    parser = argparse.ArgumentParser(prog='vm_host.py')
    parser.add_argument('action', choices=['start', 'stop'])
    parser.add_argument('directory')
    parser.add_argument('--cgroup', choices=['v1', 'v2'], default='v2', help='the VM\'s cgroup layout (start)')
    parser.add_argument('--criu', action='store_true', help='what CRIU needs of the kernel (start)')
    parser.add_argument('--systemd', action='store_true', help='systemd as PID 1, sshd as ssh.service (start)')
    args = parser.parse_args(argv[1:])
    directory = os.path.abspath(args.directory)
    os.makedirs(directory, exist_ok=True)
    if args.action == 'start':
        start(directory, cgroup=args.cgroup, criu=args.criu, systemd=args.systemd)
    else:
        stop(directory)


if __name__ == '__main__':
    main(sys.argv)
