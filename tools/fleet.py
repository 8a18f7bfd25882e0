#!/usr/bin/env python
"""A sandbox fleet: N local container hosts that Ansible reaches over real SSH.

Each host is an sshd listening only on its own loopback address (127.0.0.11,
127.0.0.12, ... port 22) inside its own private mount namespace, built by
tools/cgroup_sandbox.py: its /sys/fs/cgroup shows only its own sandbox
subtree of each hierarchy (/sys/fs/cgroup/<hierarchy>/<sandbox>) and its
/run/lock is private. The client key and each host's key are made for this
fleet with ssh-keygen. `up` writes an Ansible inventory (hosts fleet-1..N in
the groups `fleet` and `cgroup_hosts`) with host_vars/ and group_vars/
folders next to it.

    fleet.py [--dir DIR] up N [--prefix P] [--python PY] [--vars DIR]
    fleet.py [--dir DIR] status [--json]
    fleet.py [--dir DIR] stop HOST        end one host's sshd (its recorded PID)
    fleet.py [--dir DIR] start HOST       start a stopped host again, same address
    fleet.py [--dir DIR] down             end the sshds, remove sandboxes and DIR

`down` ends only the sshd processes `up` started, by the PIDs it recorded
(checked against their start time, so a reused PID is never signalled).
"""

import argparse
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cgroup_sandbox  # noqa: E402  (the sandbox host this fleet is made of)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DIR = os.path.join(REPO, 'build', 'fleet')
SSHD = '/usr/sbin/sshd'
PORT = 22
FIRST_ADDRESS = 11
# Concurrent `up`s (the demo, the tests, Molecule) pick addresses one at a time.
ALLOCATION_LOCK = '/tmp/cgroup-fleet.lock'
SSHD_CONFIG = '''\
ListenAddress {address}:{port}
AddressFamily inet
HostKey {host_key}
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
AllowUsers root
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PidFile {pid_file}
PrintMotd no
X11Forwarding no
AllowTcpForwarding no
MaxStartups 64
Subsystem sftp internal-sftp
# The keys live in the fleet's (or the VM's) directory, which may be below
# /tmp (world writable), not in a home directory; they are 0600 in a 0700 folder.
StrictModes no
'''


class FleetError(Exception):
    pass


# -- processes ------------------------------------------------------------------
def start_time(pid):
    """The process's start time in clock ticks, or None if it is gone."""
    try:
        with open('/proc/%d/stat' % pid) as handle:
            return int(handle.read().rsplit(')', 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _zombie(pid):
    try:
        with open('/proc/%d/stat' % pid) as handle:
            return handle.read().rsplit(')', 1)[1].split()[0] == 'Z'
    except OSError:
        return False


def is_ours(host):
    """The recorded sshd is still that very process (not a reused PID), and
    running: a killed sshd may stay a zombie where PID 1 does not reap."""
    return (bool(host.get('pid')) and start_time(host['pid']) == host.get('start_time')
            and not _zombie(host['pid']))


def listening(address, port=PORT, timeout=0.2):
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def address_free(address, port=PORT):
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind((address, port))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def processes_in_namespace(ns_inode, exclude=()):
    """PIDs whose mount namespace is this one (read from /proc, nothing changed)."""
    found = []
    for entry in os.listdir('/proc'):
        if entry.isdigit() and int(entry) not in exclude:
            try:
                if os.stat('/proc/%s/ns/mnt' % entry).st_ino == ns_inode:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def find_python(preferred=None):
    """A Python 3.9+ for the targets: its real path, not a pyenv shim."""
    candidates = [preferred] if preferred else []
    candidates += ['/usr/bin/python3', shutil.which('python3'), sys.executable]
    for candidate in candidates:
        if not candidate:
            continue
        try:
            out = subprocess.run([candidate, '-c', 'import sys; print(sys.version_info >= (3, 9)); print(sys.executable)'],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True,
                                 check=False, timeout=20).stdout.split()
        except (OSError, subprocess.SubprocessError):
            continue
        if len(out) == 2 and out[0] == 'True':
            return out[1]
    raise FleetError('Failed to find a Python 3.9 or newer for the fleet hosts: none of %s works' % candidates)


# -- the fleet --------------------------------------------------------------------
class Fleet:
    def __init__(self, directory):
        self.dir = os.path.abspath(directory)
        self.state_file = os.path.join(self.dir, 'fleet.json')
        self.state = None
        self.started = False  # this call began `up`, so a failure rolls it back
        self._procs = {}
        if os.path.exists(self.state_file):
            with open(self.state_file) as handle:
                self.state = json.load(handle)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def save(self):
        tmp = self.state_file + '.tmp'
        with open(tmp, 'w') as handle:
            json.dump(self.state, handle, indent=1, sort_keys=True)
        os.replace(tmp, self.state_file)

    def host(self, name):
        for host in self.state['hosts']:
            if host['name'] == name:
                return host
        raise FleetError('Failed to find host %s: the fleet has %s'
                         % (name, ', '.join(h['name'] for h in self.state['hosts'])))

    # -- up ------------------------------------------------------------------
    def up(self, count, prefix, python=None, vars_dir=None):
        if self.state is not None:
            raise FleetError('Failed to start a fleet in %s: one is there already (run down first)' % self.dir)
        if not 1 <= count <= 200:
            raise FleetError('Failed to start a fleet of %d hosts: give 1 to 200' % count)
        if not os.path.exists(SSHD):
            raise FleetError('Failed to start a fleet: %s is missing (scripts/setup installs openssh-server)' % SSHD)
        fleet_id = uuid.uuid4().hex[:8]
        os.makedirs(self.dir, mode=0o700)
        self.started = True
        os.chmod(self.dir, 0o700)
        self.state = {'id': fleet_id, 'prefix': prefix, 'python': find_python(python), 'hosts': []}
        self.save()
        keygen = ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C']
        subprocess.run(keygen + ['fleet-%s-client' % fleet_id, '-f', self.path('id_ed25519')], check=True)
        os.makedirs(self.path('hosts'))
        # sshd refuses to start without its privilege separation directory.
        os.makedirs('/run/sshd', mode=0o755, exist_ok=True)
        with open(ALLOCATION_LOCK, 'a') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            next_octet = FIRST_ADDRESS
            for index in range(1, count + 1):
                host = {'name': 'fleet-%d' % index,
                        'sandbox': '%s%s-%d' % (prefix, fleet_id, index)}
                os.makedirs(self.path('hosts', host['name']), mode=0o700)
                subprocess.run(keygen + ['%s@fleet-%s' % (host['name'], fleet_id),
                                         '-f', self.path('hosts', host['name'], 'ssh_host_ed25519_key')], check=True)
                cgroup_sandbox.Sandbox(host['sandbox']).create()
                self.state['hosts'].append(host)
                next_octet = self._launch(host, next_octet) + 1
                self.save()
            self._wait_listening(self.state['hosts'])
        self.write_inventory()
        if vars_dir:
            for sub in ('group_vars', 'host_vars'):
                if os.path.isdir(os.path.join(vars_dir, sub)):
                    shutil.copytree(os.path.join(vars_dir, sub), self.path(sub), dirs_exist_ok=True)

    def _launch(self, host, octet):
        """Start the host's sshd on the first free address from 127.0.0.<octet>;
        returns the octet used."""
        while octet < 255:
            address = '127.0.0.%d' % octet
            if address_free(address):
                break
            octet += 1
        else:
            raise FleetError('Failed to start %s: no free address 127.0.0.%d-254 port %d'
                             % (host['name'], FIRST_ADDRESS, PORT))
        hostdir = self.path('hosts', host['name'])
        config = os.path.join(hostdir, 'sshd_config')
        with open(config, 'w') as handle:
            handle.write(SSHD_CONFIG.format(address=address, port=PORT,
                                            host_key=os.path.join(hostdir, 'ssh_host_ed25519_key'),
                                            authorized_keys=self.path('id_ed25519.pub'), pid_file='none'))
        argv = cgroup_sandbox.Sandbox(host['sandbox']).command([SSHD, '-D', '-e', '-f', config])
        with open(os.path.join(hostdir, 'sshd.log'), 'ab') as log:
            # unshare and sh exec into sshd, so this PID is sshd itself; its own
            # session keeps it apart from our terminal's signals.
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        host.update(address=address, pid=proc.pid, start_time=start_time(proc.pid))
        self._procs[host['name']] = proc
        return octet

    def _wait_listening(self, hosts, timeout=20):
        deadline = time.time() + timeout
        waiting = list(hosts)
        while waiting:
            for host in list(waiting):
                proc = self._procs.get(host['name'])
                if proc is not None and proc.poll() is not None:
                    raise FleetError('Failed to start %s on %s: sshd exited (%s); see %s'
                                     % (host['name'], host['address'], proc.returncode,
                                        self.path('hosts', host['name'], 'sshd.log')))
                if listening(host['address']):
                    # The namespace's identity, to find what is left in it at down.
                    host['start_time'] = start_time(host['pid'])
                    host['mnt_ns'] = os.stat('/proc/%d/ns/mnt' % host['pid']).st_ino
                    waiting.remove(host)
            if waiting and time.time() > deadline:
                raise FleetError('Failed to start %s: not listening after %ds'
                                 % (', '.join(h['name'] for h in waiting), timeout))
            time.sleep(0.02)
        self.save()

    def write_inventory(self):
        known = []
        for host in self.state['hosts']:
            with open(self.path('hosts', host['name'], 'ssh_host_ed25519_key.pub')) as handle:
                known.append('%s %s' % (host['address'], ' '.join(handle.read().split()[:2])))
        with open(self.path('known_hosts'), 'w') as handle:
            handle.write('\n'.join(known) + '\n')
        ssh_common = ('-o UserKnownHostsFile=%s -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes '
                      '-o IdentitiesOnly=yes' % self.path('known_hosts'))
        lines = ['# Written by tools/fleet.py for fleet %s; host_vars/ and group_vars/ sit next to it.'
                 % self.state['id'],
                 'all:', '  children:', '    cgroup_hosts:', '      children:', '        fleet:',
                 '          hosts:']
        for host in self.state['hosts']:
            lines.append('            %s: {ansible_host: %s}' % (host['name'], host['address']))
        lines += ['          vars:',
                  '            ansible_user: root',
                  '            ansible_port: %d' % PORT,
                  '            ansible_ssh_private_key_file: %s' % json.dumps(self.path('id_ed25519')),
                  # Host keys are checked against this fleet's own known_hosts.
                  '            ansible_ssh_common_args: %s' % json.dumps(ssh_common),
                  # No shared master connection: each task opens its own, so a host
                  # whose sshd is gone fails at once, and nothing outlives `down`.
                  '            ansible_ssh_args: "-o ControlMaster=no -o ControlPath=none"',
                  '            ansible_ssh_pipelining: true',
                  '            ansible_python_interpreter: %s' % json.dumps(self.state['python'])]
        with open(self.path('inventory.yml'), 'w') as handle:
            handle.write('\n'.join(lines) + '\n')
        for sub in ('group_vars', 'host_vars'):
            os.makedirs(self.path(sub), exist_ok=True)

    # -- one host --------------------------------------------------------------
    def stop(self, name, sig=signal.SIGTERM):
        host = self.host(name)
        if not is_ours(host):
            return False
        os.kill(host['pid'], sig)
        deadline = time.time() + 5
        while is_ours(host) and time.time() < deadline:
            time.sleep(0.02)
        return True

    def start(self, name):
        host = self.host(name)
        if is_ours(host):
            raise FleetError('Failed to start %s: its sshd (PID %d) is running' % (name, host['pid']))
        if not address_free(host['address']):
            raise FleetError('Failed to start %s: %s:%d is taken' % (name, host['address'], PORT))
        octet = int(host['address'].rsplit('.', 1)[1])
        self._launch(host, octet)
        self.save()
        self._wait_listening([host])

    # -- down --------------------------------------------------------------------
    def down(self):
        """Returns a list of problems (empty when everything was removed)."""
        problems = []
        for host in self.state['hosts']:
            if is_ours(host):
                os.kill(host['pid'], signal.SIGTERM)
        deadline = time.time() + 10
        for host in self.state['hosts']:
            while is_ours(host) and time.time() < deadline:
                time.sleep(0.02)
            if is_ours(host):
                os.kill(host['pid'], signal.SIGKILL)
            # Sessions still open keep the namespace (and its mounts) alive; wait
            # for them to end, but never signal what we did not start.
            left = []
            if host.get('mnt_ns'):
                while time.time() < deadline:
                    left = processes_in_namespace(host['mnt_ns'], exclude=(host['pid'],))
                    if not left:
                        break
                    time.sleep(0.05)
            if left:
                problems.append('%s: processes still in its namespace: %s' % (host['name'], left))
            for path in cgroup_sandbox.Sandbox(host['sandbox']).destroy():
                problems.append('%s: left behind %s' % (host['name'], path))
        if not problems:
            shutil.rmtree(self.dir)
        return problems

    # -- status --------------------------------------------------------------------
    def status(self):
        rows = []
        for host in self.state['hosts']:
            rows.append({'name': host['name'], 'address': host.get('address'), 'pid': host.get('pid'),
                         'running': is_ours(host),
                         'listening': bool(host.get('address')) and listening(host['address']),
                         'sandbox': host['sandbox']})
        return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--dir', default=os.environ.get('FLEET_DIR', DEFAULT_DIR),
                        help='the fleet directory (default build/fleet, or $FLEET_DIR)')
    sub = parser.add_subparsers(dest='action', required=True)
    p_up = sub.add_parser('up')
    p_up.add_argument('count', type=int)
    p_up.add_argument('--prefix', default='crfleet-', help='sandbox name prefix')
    p_up.add_argument('--python', help='the targets\' Python (default: a Python 3.9+ found here)')
    p_up.add_argument('--vars', help='a folder whose group_vars/ and host_vars/ are copied next to the inventory')
    p_status = sub.add_parser('status')
    p_status.add_argument('--json', action='store_true')
    for name in ('stop', 'start'):
        sub.add_parser(name).add_argument('host')
    sub.add_parser('down')
    args = parser.parse_args(argv)

    if os.geteuid() != 0:
        print('fleet: needs root (it creates cgroups and binds port 22 on loopback addresses)', file=sys.stderr)
        return 1
    fleet = Fleet(args.dir)
    try:
        if args.action == 'up':
            began = time.time()
            try:
                fleet.up(args.count, args.prefix, args.python, args.vars)
            except BaseException:
                if fleet.started:
                    fleet.down()
                raise
            print('fleet: %d hosts up in %.2fs; inventory %s'
                  % (args.count, time.time() - began, fleet.path('inventory.yml')))
            for host in fleet.state['hosts']:
                print('  %-9s %s:%d  sshd PID %d  /sys/fs/cgroup/<hierarchy>/%s'
                      % (host['name'], host['address'], PORT, host['pid'], host['sandbox']))
            return 0
        if fleet.state is None:
            raise FleetError('Failed to find a fleet in %s: nothing is up there' % fleet.dir)
        if args.action == 'status':
            rows = fleet.status()
            if args.json:
                print(json.dumps({'dir': fleet.dir, 'inventory': fleet.path('inventory.yml'), 'hosts': rows}))
            else:
                for row in rows:
                    print('%-9s %-12s pid %-7s %s' % (row['name'], row['address'], row['pid'],
                                                      'up' if row['running'] and row['listening'] else 'DOWN'))
            return 0 if all(r['running'] and r['listening'] for r in rows) else 3
        if args.action == 'stop':
            print('fleet: %s %s' % (args.host, 'stopped' if fleet.stop(args.host) else 'was not running'))
            return 0
        if args.action == 'start':
            fleet.start(args.host)
            print('fleet: %s up again on %s' % (args.host, fleet.host(args.host)['address']))
            return 0
        if args.action == 'down':
            began = time.time()
            problems = fleet.down()
            for problem in problems:
                print('fleet: %s' % problem, file=sys.stderr)
            if not problems:
                print('fleet: %d hosts down in %.2fs; sandboxes and %s removed'
                      % (len(fleet.state['hosts']), time.time() - began, fleet.dir))
            return 1 if problems else 0
    except FleetError as exc:
        print('fleet: %s' % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
