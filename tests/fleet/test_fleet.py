"""The sandbox fleet (tools/fleet.py) and the collection's playbooks, through
real sshds and real ansible-playbook over SSH: isolation of each host, check
mode, snapshot, migrate, a host whose sshd is killed during a run, and a host
whose spec is invalid. Every effect is read from the kernel's own files, from
outside, through each host's sandbox path."""

import json
import os
import re
import signal
import subprocess
import sys

import pytest
import yaml

import cgroup_sandbox
from conftest import COLLECTIONS, REPO, TEST_PREFIX

FLEET = os.path.join(REPO, 'tools', 'fleet.py')
VENV_BIN = os.path.dirname(sys.executable)

# Two containers per host, from one group_vars file: ct1 (2 cgroups, 4
# properties; its own pids.max on each host, 100 + its number) and ct2 (1
# cgroup, 1 property). A first restore creates 3 cgroups and writes 5 properties.
CT1 = {'version': 1, 'cgroups': {
    'ct1': {'controllers': ['memory', 'pids'],
            'properties': {'memory.limit_in_bytes': '64M',
                           'pids.max': "{{ 100 + inventory_hostname.split('-')[1] | int }}"}},
    'ct1/app': {'pids.max': 50, 'memory.limit_in_bytes': 100000000}}}
CT2 = {'version': 1, 'cgroups': {'ct2': {'controllers': ['pids'], 'properties': {'pids.max': 20}}}}
GROUP_VARS = {'cgroup_fleet_containers': {'ct1': CT1, 'ct2': CT2}}
FIRST = 'ok, 3 cgroups created, 5 properties changed, 0 failures'
NOTHING = 'ok, 0 cgroups created, 0 properties changed, 0 failures'
RESTORE_TASK = 'Restore all containers of the host in one call'


class Fleet:
    def __init__(self, directory):
        self.dir = directory

    def tool(self, *args, check=True):
        proc = subprocess.run([sys.executable, FLEET, '--dir', self.dir] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        assert proc.returncode == 0 or not check, proc.stdout
        return proc

    @property
    def state(self):
        with open(os.path.join(self.dir, 'fleet.json')) as handle:
            return json.load(handle)

    def host(self, name):
        return [h for h in self.state['hosts'] if h['name'] == name][0]

    def kernel(self, name, hierarchy, *parts):
        """A kernel file of a host, read from outside; None if it does not exist."""
        path = os.path.join('/sys/fs/cgroup', hierarchy, self.host(name)['sandbox'], *parts)
        if not os.path.exists(path):
            return None
        with open(path) as handle:
            return handle.read().strip()

    def write_vars(self, kind, name, data):
        with open(os.path.join(self.dir, kind, name + '.yml'), 'w') as handle:
            yaml.safe_dump(data, handle)

    def playbook_args(self, name, *args):
        return [os.path.join(VENV_BIN, 'ansible-playbook'), '-i', os.path.join(self.dir, 'inventory.yml'),
                'checkpoint_restore.cgroups.' + name] + list(args)

    def playbook(self, name, *args):
        proc = subprocess.run(self.playbook_args(name, *args), env=ansible_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        return Run(proc.returncode, proc.stdout)


def ansible_env():
    return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1', PYTHONUNBUFFERED='1')


class Run:
    """An ansible-playbook run: rc, output, the summary lines and the recap."""

    def __init__(self, rc, output):
        self.rc, self.output = rc, output
        assert 'Traceback' not in output, output
        self.summary = dict(re.findall(r'^\s*"(fleet-\d+): (.*?)",?$', output, re.M))
        self.recap = {host: dict((k, int(v)) for k, v in re.findall(r'(\w+)=(\d+)', counts))
                      for host, counts in re.findall(r'^(\S+)\s+:\s+(ok=.*)$', output, re.M)}

    def task_results(self, task):
        """{host: [result lines]} of every run of the task (one block per batch)."""
        found = {}
        for block in re.findall(r'^TASK \[%s\].*?\n(.*?)(?=^TASK \[|^PLAY |\Z)' % re.escape(task),
                                self.output, re.M | re.S):
            for line in block.splitlines():
                match = re.match(r'^(ok|changed|fatal|failed|skipping): \[(fleet-\d+)\]', line)
                if match:
                    found.setdefault(match.group(2), []).append(line)
        return found


@pytest.fixture
def fleet(tmp_path):
    if os.geteuid() != 0:
        pytest.skip('the fleet needs root')
    box = Fleet(str(tmp_path / 'fleet'))
    proc = box.tool('up', '4', '--prefix', '%s%d-fleet-' % (TEST_PREFIX, os.getpid()))
    assert '4 hosts up' in proc.stdout, proc.stdout
    box.write_vars('group_vars', 'cgroup_hosts', GROUP_VARS)
    try:
        yield box
    finally:
        sandboxes = [h['sandbox'] for h in box.state['hosts']]
        pids = [h['pid'] for h in box.state['hosts']]
        down = box.tool('down', check=False)
        assert down.returncode == 0, down.stdout
        assert not os.path.exists(box.dir)
        for sandbox in sandboxes:
            assert not os.path.exists(os.path.join('/sys/fs/cgroup/memory', sandbox)), sandbox
        for pid in pids:
            assert _gone(pid), 'sshd %d still running after down' % pid


def _gone(pid):
    try:
        with open('/proc/%d/stat' % pid) as handle:
            return handle.read().rsplit(')', 1)[1].split()[0] == 'Z'
    except OSError:
        return True


def _listening_sockets(pid):
    """The TCP addresses this process listens on, from ss (a reader, changes nothing)."""
    out = subprocess.run(['ss', '-Hltnp'], stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
    return sorted(line.split()[3] for line in out.splitlines() if 'pid=%d,' % pid in line)


def test_each_host_is_an_sshd_on_its_own_address_with_its_own_cgroup_view(fleet):
    hosts = fleet.state['hosts']
    assert [h['name'] for h in hosts] == ['fleet-1', 'fleet-2', 'fleet-3', 'fleet-4']
    hierarchies = cgroup_sandbox.host_hierarchies()
    assert hierarchies and 'memory' in hierarchies or '' in hierarchies, hierarchies
    namespaces = set()
    for host in hosts:
        assert os.readlink('/proc/%d/exe' % host['pid']) == '/usr/sbin/sshd'
        assert re.match(r'^127\.0\.0\.(\d+)$', host['address']) and int(host['address'].split('.')[3]) >= 11
        assert _listening_sockets(host['pid']) == ['%s:22' % host['address']]
        namespaces.add(os.readlink('/proc/%d/ns/mnt' % host['pid']))
        with open('/proc/%d/mountinfo' % host['pid']) as handle:
            mounts = handle.read()
        # Its view lists exactly the hierarchies of this machine, and each
        # /sys/fs/cgroup/<h> is its own sandbox subtree; /run/lock is private.
        view = '/proc/%d/root/sys/fs/cgroup' % host['pid']
        if '' in hierarchies:  # pure cgroup v2: the sandbox cgroup is the view itself
            pairs = [(view, os.path.join('/sys/fs/cgroup', host['sandbox']))]
        else:
            assert sorted(os.listdir(view)) == sorted(hierarchies), (host['name'], os.listdir(view))
            pairs = [(os.path.join(view, h), os.path.join('/sys/fs/cgroup', h, host['sandbox'])) for h in hierarchies]
        for inside_path, sandbox_path in pairs:
            inside, subtree = os.stat(inside_path), os.stat(sandbox_path)
            assert (inside.st_dev, inside.st_ino) == (subtree.st_dev, subtree.st_ino), (inside_path, sandbox_path)
        assert re.search(r' /run/lock ', mounts), mounts
    assert os.readlink('/proc/self/ns/mnt') not in namespaces and len(namespaces) == 4

    # A dry run across the fleet writes nothing.
    run = fleet.playbook('restore_limits', '--check')
    assert run.rc == 0, run.output
    assert all(run.summary[h].startswith('ok, 3 cgroups would be created, 5 properties would be changed, 0 failures')
               for h in run.summary) and len(run.summary) == 4, run.output
    assert all(fleet.kernel(h['name'], 'pids', ct) is None for h in hosts for ct in ('ct1', 'ct2'))

    # The real run: both containers of each host in ONE module call (one
    # result per host, no loop), each host's own value read through its sandbox path.
    run = fleet.playbook('restore_limits')
    assert run.rc == 0 and len(run.summary) == 4, run.output
    calls = run.task_results(RESTORE_TASK)
    assert sorted(calls) == ['fleet-1', 'fleet-2', 'fleet-3', 'fleet-4'], run.output
    assert all(len(lines) == 1 and lines[0].startswith('changed: ') and 'item=' not in lines[0]
               for lines in calls.values()), calls
    for number, host in enumerate(hosts, 1):
        assert run.summary[host['name']] == FIRST, run.output
        assert fleet.kernel(host['name'], 'pids', 'ct1', 'pids.max') == str(100 + number)
        assert fleet.kernel(host['name'], 'memory', 'ct1', 'app', 'memory.limit_in_bytes') == '99999744'
        assert fleet.kernel(host['name'], 'pids', 'ct2', 'pids.max') == '20'
        # the module's lock was taken in the host's private /run/lock
        assert os.listdir(os.path.join('/tmp/cgroup-sandbox', host['sandbox'], 'lock'))

    # snapshot: one file per host and container on the controller, equal to the kernel's values
    out = os.path.join(fleet.dir, 'snapshots')
    run = fleet.playbook('snapshot', '-e', 'cgroup_fleet_snapshot_dir=%s' % out)
    assert run.rc == 0, run.output
    assert sorted(os.listdir(out)) == ['fleet-1', 'fleet-2', 'fleet-3', 'fleet-4']
    for number, host in enumerate(hosts, 1):
        # one file per host AND container, each with only its container's cgroups
        assert sorted(os.listdir(os.path.join(out, host['name']))) == ['ct1.yml', 'ct2.yml']
        with open(os.path.join(out, host['name'], 'ct1.yml')) as handle:
            spec = yaml.safe_load(handle)
        assert sorted(spec['cgroups']) == ['ct1', 'ct1/app']
        assert str(spec['cgroups']['ct1']['properties']['pids.max']) \
            == fleet.kernel(host['name'], 'pids', 'ct1', 'pids.max') == str(100 + number)
        with open(os.path.join(out, host['name'], 'ct2.yml')) as handle:
            spec = yaml.safe_load(handle)
        assert sorted(spec['cgroups']) == ['ct2']
        assert str(spec['cgroups']['ct2']['properties']['pids.max']) \
            == fleet.kernel(host['name'], 'pids', 'ct2', 'pids.max') == '20'


def test_a_host_whose_sshd_is_killed_fails_alone_and_converges_when_back(fleet):
    # Batches of 2: fleet-3's sshd is killed (by its recorded PID) as soon as
    # the first batch reports, so fleet-3 is gone when its batch starts.
    victim = fleet.host('fleet-3')
    proc = subprocess.Popen(fleet.playbook_args('restore_limits', '-e', 'cgroup_fleet_serial=2'), env=ansible_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if re.match(r'^(ok|changed): \[fleet-[12]\]', line) and victim['pid']:
            os.kill(victim['pid'], signal.SIGKILL)
            victim['pid'] = None
    run = Run(proc.wait(), ''.join(lines))
    assert victim['pid'] is None, 'the run never reported its first batch: %s' % run.output
    assert run.rc != 0, run.output
    assert run.summary['fleet-3'].startswith('UNREACHABLE, 0 cgroups created, 0 properties changed, 1 failure: '), \
        run.output
    assert 'port 22: Connection refused' in run.summary['fleet-3'], run.output
    for name in ('fleet-1', 'fleet-2', 'fleet-4'):
        assert run.summary[name] == FIRST, run.output
        assert fleet.kernel(name, 'pids', 'ct1', 'pids.max') == str(100 + int(name[-1]))
    assert fleet.kernel('fleet-3', 'pids', 'ct1') is None
    assert run.recap['fleet-3']['failed'] == 1 and run.recap['fleet-4']['failed'] == 0, run.output

    # The host comes back (same address, same sandbox); a re-run converges it
    # and changes nothing anywhere else.
    assert 'fleet-3 up again on %s' % victim['address'] in fleet.tool('start', 'fleet-3').stdout
    run = fleet.playbook('restore_limits', '-e', 'cgroup_fleet_serial=2')
    assert run.rc == 0, run.output
    assert run.summary['fleet-3'] == FIRST, run.output
    assert fleet.kernel('fleet-3', 'pids', 'ct1', 'pids.max') == '103'
    for name in ('fleet-1', 'fleet-2', 'fleet-4'):
        assert run.summary[name] == NOTHING, run.output
        assert run.recap[name]['changed'] == 0, run.output


def test_a_host_with_an_invalid_spec_fails_alone_with_its_message(fleet):
    bad = {'cgroup_fleet_containers': {'ct1': {'version': 1, 'cgroups': {'ct1': {'pids.max': 'lots'}}}}}
    fleet.write_vars('host_vars', 'fleet-2', bad)
    # A ramp [1, "50%"] with max_fail_percentage 49: batches fleet-1, then
    # fleet-2 and fleet-3, then fleet-4. Half of the second batch fails, so the
    # run stops before fleet-4, and the summary still covers every host.
    run = fleet.playbook('restore_limits', '-e', '{"cgroup_fleet_serial": [1, "50%"]}',
                         '-e', 'cgroup_fleet_max_fail_percentage=49')
    assert run.rc != 0, run.output
    message = "Invalid spec: cgroup 'ct1', property 'pids.max': expected a whole number or max, got 'lots'."
    assert run.summary['fleet-2'] == 'FAILED, 0 cgroups created, 0 properties changed, 1 failure: ' + message, \
        run.output
    assert run.summary['fleet-1'] == run.summary['fleet-3'] == FIRST
    assert run.summary['fleet-4'] == 'not run: the run stopped before its batch', run.output
    assert fleet.kernel('fleet-2', 'pids', 'ct1') is None and fleet.kernel('fleet-4', 'pids', 'ct1') is None
    assert fleet.kernel('fleet-3', 'pids', 'ct1', 'pids.max') == '103'

    # All at once (the default): the others finish, only fleet-2 fails.
    run = fleet.playbook('restore_limits')
    assert run.rc != 0, run.output
    assert run.summary['fleet-2'].endswith(message), run.output
    assert run.summary['fleet-4'] == FIRST, run.output
    assert run.summary['fleet-1'] == run.summary['fleet-3'] == NOTHING
    assert fleet.kernel('fleet-4', 'pids', 'ct1', 'pids.max') == '104'
    assert fleet.kernel('fleet-2', 'pids', 'ct1') is None
    assert [h for h, r in run.recap.items() if r['failed']] == ['fleet-2'], run.output


def test_migrate_restores_the_source_limits_under_another_root_in_bind_mode(fleet):
    assert fleet.playbook('restore_limits', '--limit', 'fleet-1').rc == 0
    view = os.path.join(fleet.dir, 'views', 'ct1')
    args = ['-e', 'cgroup_fleet_migrate_source=fleet-1', '-e', 'cgroup_fleet_migrate_destination=fleet-4',
            '-e', 'cgroup_fleet_migrate_container=ct1', '-e', 'cgroup_fleet_migrate_root=lxc/ct1',
            '-e', 'cgroup_fleet_migrate_view=%s' % view]
    run = fleet.playbook('migrate', *args)
    assert run.rc == 0, run.output
    assert 'the limits of each read back equal to the source' in run.output
    for parts in (('pids', 'pids.max'), ('memory', 'memory.limit_in_bytes'), ('pids', 'app', 'pids.max'),
                  ('memory', 'app', 'memory.limit_in_bytes')):
        source = fleet.kernel('fleet-1', parts[0], 'ct1', *parts[1:])
        assert source is not None
        assert fleet.kernel('fleet-4', parts[0], 'lxc', 'ct1', *parts[1:]) == source, parts
    assert fleet.kernel('fleet-4', 'pids', 'lxc', 'ct1', 'pids.max') == '101'
    # The view is a bind of the destination's top-level cgroup, in fleet-4's namespace only.
    with open('/proc/%d/mountinfo' % fleet.host('fleet-4')['pid']) as handle:
        assert ' %s/memory ' % view in handle.read()
    with open('/proc/self/mountinfo') as handle:
        assert view not in handle.read()
    run = fleet.playbook('migrate', *args)
    assert run.rc == 0 and run.recap['fleet-4']['changed'] == 0, run.output

    # The verification catches a destination that differs: ct1/app's pids.max
    # changed from outside, then the migration checked again without restoring.
    app = os.path.join('/sys/fs/cgroup/pids', fleet.host('fleet-4')['sandbox'], 'lxc', 'ct1', 'app', 'pids.max')
    with open(app, 'w') as handle:
        handle.write('49')
    run = fleet.playbook('migrate', '--skip-tags', 'cgroup_fleet_migrate_restore', *args)
    assert run.rc != 0 and run.recap['fleet-4']['failed'] == 1, run.output
    assert 'Failed to migrate ct1: limits differ on fleet-4: ' in run.output, run.output
    # What differs is what a restore of the source's snapshot would change
    # there (cgroup_restore in check mode): ct1/app's pids.max, at its new place.
    assert "snapshot of ct1 at /lxc/ct1 would change" in run.output, run.output
    differences = re.search(r'would change (\{.*\})"', run.output).group(1)
    assert "'writes': [{'cgroup': 'lxc/ct1/app', 'hierarchy': 'pids', 'property': 'pids.max', " \
           "'before': '49', 'after': '50', 'spec_value': 50}]" in differences, differences
    assert "'created': []" in differences and "'cgroup': 'lxc/ct1'," not in differences, differences
    assert fleet.kernel('fleet-4', 'pids', 'lxc', 'ct1', 'app', 'pids.max') == '49'
    # A full run (bind mode adopts and converges) puts it right again.
    run = fleet.playbook('migrate', *args)
    assert run.rc == 0 and run.recap['fleet-4']['changed'] >= 1, run.output
    assert fleet.kernel('fleet-4', 'pids', 'lxc', 'ct1', 'app', 'pids.max') == '50'


def test_a_host_whose_containers_overlap_is_refused_with_its_message(fleet):
    # fleet-1: ct2 names a cgroup inside ct1's; fleet-2: ct2 names ct1's very
    # cgroup. Merged into one spec, one would silently take over the other.
    fleet.write_vars('host_vars', 'fleet-1', {'cgroup_fleet_containers': {'ct1': CT1, 'ct2': {
        'version': 1, 'cgroups': {'ct1/app': {'controllers': ['pids'], 'properties': {'pids.max': 7}}}}}})
    fleet.write_vars('host_vars', 'fleet-2', {'cgroup_fleet_containers': {'ct1': CT1, 'ct2': {
        'version': 1, 'cgroups': {'ct1': {'controllers': ['pids'], 'properties': {'pids.max': 7}}}}}})
    run = fleet.playbook('restore_limits')
    assert run.rc != 0, run.output
    refused = 'FAILED, 0 cgroups created, 0 properties changed, 1 failure: Failed to restore: the containers\' cgroups ' \
              'overlap (%s). Give each container its own cgroups; nothing was written.'
    assert run.summary['fleet-1'] == refused % "ct2's cgroup /ct1/app lies inside ct1's cgroup /ct1", run.output
    assert run.summary['fleet-2'] == refused % 'ct1 and ct2 both name the cgroup /ct1', run.output
    assert run.summary['fleet-3'] == run.summary['fleet-4'] == FIRST, run.output
    # The module's one call refused each of them (the overlap is checked in
    # Python, before anything is written), and they have nothing written.
    calls = run.task_results(RESTORE_TASK)
    assert all(len(calls[h]) == 1 and calls[h][0].startswith('fatal: ') for h in ('fleet-1', 'fleet-2')), run.output
    for name in ('fleet-1', 'fleet-2'):
        assert fleet.kernel(name, 'pids', 'ct1') is None and fleet.kernel(name, 'memory', 'ct1') is None
        assert run.recap[name]['failed'] == 1, run.output
    assert fleet.kernel('fleet-4', 'pids', 'ct2', 'pids.max') == '20'


def test_opport_adopts_existing_cgroups_on_the_hosts_chosen_by_cgroup_fleet_hosts(fleet):
    # ct1 is already there on fleet-1 and fleet-3 (made from outside, in their
    # sandboxes), with a pids.max that differs from the spec's.
    for name in ('fleet-1', 'fleet-3'):
        for hierarchy in ('memory', 'pids'):
            os.mkdir(os.path.join('/sys/fs/cgroup', hierarchy, fleet.host(name)['sandbox'], 'ct1'))
        for hierarchy, prop, value in (('pids', 'pids.max', '7'), ('memory', 'memory.limit_in_bytes', '64M')):
            with open(os.path.join('/sys/fs/cgroup', hierarchy, fleet.host(name)['sandbox'], 'ct1', prop), 'w') as f:
                f.write(value)
    chosen = ['-e', 'cgroup_fleet_mode=opport', '-e', 'cgroup_fleet_hosts=fleet-1,fleet-3']
    run = fleet.playbook('restore_limits', *chosen)
    assert run.rc == 0, run.output
    # Only the chosen hosts ran; ct1 adopted and converged (pids.max, and
    # ct1/app's two limits), ct1/app and ct2 created.
    assert sorted(run.summary) == sorted(run.recap) == ['fleet-1', 'fleet-3'], run.output
    for name, number in (('fleet-1', 1), ('fleet-3', 3)):
        assert run.summary[name] == 'ok, 2 cgroups created, 4 properties changed, 0 failures', run.output
        assert run.recap[name]['changed'] == 1, run.output
        assert fleet.kernel(name, 'pids', 'ct1', 'pids.max') == str(100 + number)
        assert fleet.kernel(name, 'memory', 'ct1', 'memory.limit_in_bytes') == str(64 << 20)
        assert fleet.kernel(name, 'pids', 'ct1', 'app', 'pids.max') == '50'
        assert fleet.kernel(name, 'pids', 'ct2', 'pids.max') == '20'
    for name in ('fleet-2', 'fleet-4'):
        assert fleet.kernel(name, 'pids', 'ct1') is None and fleet.kernel(name, 'pids', 'ct2') is None
    # Converged: a second run changes nothing.
    run = fleet.playbook('restore_limits', *chosen)
    assert run.rc == 0 and sorted(run.summary) == ['fleet-1', 'fleet-3'], run.output
    assert run.summary['fleet-1'] == run.summary['fleet-3'] == NOTHING, run.output
    assert run.recap['fleet-1']['changed'] == run.recap['fleet-3']['changed'] == 0, run.output
