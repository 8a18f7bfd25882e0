"""cgroup_systemd_unit against systemd 252 as PID 1 in the VM (issue 14),
through the real ansible-playbook over SSH. One VM (the systemd_vm fixture
of conftest.py); the tests run in order and build on each other: restore,
daemon-reload and a second run, drift from set-property, a process in a
subcgroup, state absent, bad input. Every assertion reads the kernel's own
files (or systemctl) over ssh."""

import json
import os
import subprocess
import time

import pytest

import vm_playbooks  # same directory
from vm_playbooks import vm_host

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNIT = 'crtest-ct1.service'
CG = '/sys/fs/cgroup/machine.slice/' + UNIT
SPEC = {'version': 1, 'cgroups': {
    'ct1': {'memory.max': '100M', 'pids.max': 20, 'cpu.max': '50000 100000', 'cpu.weight': 50},
    'ct1/worker': {'memory.max': '50M', 'pids.max': 7},
    'ct1/worker/inner': {'pids.max': 3},
    'ct1/db': {'pids.max': 4},
}}


@pytest.fixture(scope='module')
def play(systemd_vm, tmp_path_factory):
    """play(module args, check=False) -> the registered result of one task
    of cgroup_systemd_unit, run by ansible-playbook on this machine."""
    work = tmp_path_factory.mktemp('crtest-systemd-unit')
    inventory = work / 'inventory.json'
    inventory.write_text(json.dumps({'all': {'hosts': {'vm': vm_host.inventory_vars(
        os.path.join(systemd_vm.directory, 'vm'), systemd_vm.state['port'])}}}))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, 'build', 'collections'),
               ANSIBLE_HOST_KEY_CHECKING='True', ANSIBLE_NOCOLOR='1')
    counter = [0]

    def run(args, check=False):
        counter[0] += 1
        out = work / ('result%d.json' % counter[0])
        playbook = work / ('play%d.yml' % counter[0])
        playbook.write_text(json.dumps([{
            'hosts': 'vm', 'gather_facts': False, 'tasks': [
                {'checkpoint_restore.cgroups.cgroup_systemd_unit': args, 'register': 'r', 'ignore_errors': True,
                 'check_mode': check, 'diff': True},
                {'ansible.builtin.copy': {'content': '{{ r | to_json }}', 'dest': str(out)},
                 'delegate_to': 'localhost'}]}]))
        done = subprocess.run([os.path.join(REPO, '.venv', 'bin', 'ansible-playbook'), '-i', str(inventory),
                               str(playbook)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=600, check=False)
        assert out.exists(), done.stdout[-3000:]
        return json.loads(out.read_text())

    def role(playbook, variables):
        """One of tests/v2vm/playbooks (a role as a user's play takes it) ->
        vm_playbooks.summarize's {rc, ok, changed, failed, messages, ...}."""
        counter[0] += 1
        extra = work / ('vars%d.json' % counter[0])
        extra.write_text(json.dumps(variables))
        begin = time.monotonic()
        done = subprocess.run([os.path.join(REPO, '.venv', 'bin', 'ansible-playbook'), '-i', str(inventory),
                               os.path.join(REPO, 'tests', 'v2vm', 'playbooks', playbook), '-e', '@%s' % extra],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=900, check=False)
        return vm_playbooks.summarize(done.returncode, done.stdout, round(time.monotonic() - begin, 1))
    run.role = role
    return run


def cat(ssh, *files):
    found = ssh('cat ' + ' '.join(files))
    assert found.returncode == 0, found.stderr
    return found.stdout.split('\n')[:len(files)]


LIMITS = ('memory.max', 'pids.max', 'cpu.max', 'cpu.weight', 'worker/memory.max', 'worker/pids.max',
          'worker/inner/pids.max', 'db/pids.max')
WANTED = ['104857600', '20', '50000 100000', '50', '52428800', '7', '3', '4']


def test_0_check_mode_before_the_unit_exists_changes_nothing(systemd_vm, play):
    checked = play({'unit': UNIT, 'spec': SPEC}, check=True)
    assert not checked.get('failed'), checked
    assert checked['changed'] is True and checked['unit_created'] is True
    assert checked['unit_properties'] == ['CPUQuota=50%', 'CPUQuotaPeriodSec=100000us', 'CPUWeight=50',
                                          'MemoryMax=104857600', 'TasksMax=20'], checked
    created = sorted(c['cgroup'] for c in checked['subtree']['created'])
    assert created == ['machine.slice/%s/%s' % (UNIT, c) for c in ('db', 'worker', 'worker/inner')], created
    assert 'memory.max = 104857600' in checked['diff']['after']
    assert systemd_vm('systemctl status ' + UNIT).returncode == 4
    assert systemd_vm('test -e ' + CG).returncode == 1


def test_1_restored_the_systemd_way(systemd_vm, play):
    result = play({'unit': UNIT, 'spec': SPEC})
    assert not result.get('failed'), result
    assert result['changed'] and result['unit_created']
    assert systemd_vm('systemctl show -P Delegate ' + UNIT).stdout.strip() == 'yes'
    assert systemd_vm('systemctl show -P ControlGroup ' + UNIT).stdout.strip() == '/machine.slice/' + UNIT
    assert cat(systemd_vm, *['%s/%s' % (CG, f) for f in LIMITS]) == WANTED
    # the holder leaf keeps the unit (and its cgroup) alive; the unit's own cgroup has no process
    assert cat(systemd_vm, CG + '/cgroup.procs') == ['']
    assert cat(systemd_vm, CG + '/holder/cgroup.procs')[0].strip().isdigit()


def test_2_daemon_reload_then_a_second_run_changes_nothing_the_direct_way_is_reverted(systemd_vm, play):
    assert systemd_vm('systemctl daemon-reload').returncode == 0
    result = play({'unit': UNIT, 'spec': SPEC})
    assert not result.get('failed'), result
    assert result['changed'] is False, result
    assert result['unit_properties'] == [] and result['subtree']['changed'] is False
    assert cat(systemd_vm, *['%s/%s' % (CG, f) for f in LIMITS]) == WANTED
    # the direct way: a value written into the unit's own pids.max is reverted by systemd
    assert systemd_vm('echo 5 > %s/pids.max && cat %s/pids.max' % (CG, CG)).stdout.strip() == '5'
    assert systemd_vm('systemctl daemon-reload').returncode == 0
    assert cat(systemd_vm, CG + '/pids.max') == ['20']


def test_3_set_property_drift_found_by_check_mode_and_converged(systemd_vm, play):
    assert systemd_vm('systemctl set-property --runtime %s MemoryMax=200M' % UNIT).returncode == 0
    assert cat(systemd_vm, CG + '/memory.max') == ['209715200']
    checked = play({'unit': UNIT, 'spec': SPEC}, check=True)
    assert not checked.get('failed'), checked
    assert checked['changed'] is True and checked['unit_properties'] == ['MemoryMax=104857600'], checked
    assert 'memory.max = 209715200' in checked['diff']['before'] and 'memory.max = 104857600' in checked['diff']['after']
    assert cat(systemd_vm, CG + '/memory.max') == ['209715200']  # check mode wrote nothing
    result = play({'unit': UNIT, 'spec': SPEC})
    assert result['changed'] is True and result['unit_properties'] == ['MemoryMax=104857600'], result
    assert cat(systemd_vm, CG + '/memory.max') == ['104857600']
    assert systemd_vm('systemctl show -P MemoryMax ' + UNIT).stdout.strip() == '104857600'
    assert play({'unit': UNIT, 'spec': SPEC})['changed'] is False


def test_4_a_process_moved_into_a_subcgroup_stays_after_daemon_reload(systemd_vm, play):
    started = systemd_vm('setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $!')
    pid = started.stdout.strip()
    assert pid.isdigit(), started.stderr
    try:
        assert systemd_vm('echo %s > %s/worker/inner/cgroup.procs' % (pid, CG)).returncode == 0
        assert systemd_vm('systemctl daemon-reload').returncode == 0
        assert pid in cat(systemd_vm, CG + '/worker/inner/cgroup.procs')[0].split()
        assert systemd_vm('cat /proc/%s/cgroup' % pid).stdout.strip() == '0::/machine.slice/%s/worker/inner' % UNIT
        assert cat(systemd_vm, *['%s/%s' % (CG, f) for f in LIMITS]) == WANTED
        assert systemd_vm('systemctl show -P ActiveState ' + UNIT).stdout.strip() == 'active'
        assert play({'unit': UNIT, 'spec': SPEC})['changed'] is False
    finally:
        systemd_vm('kill %s' % pid)


# A parent in db and a child in worker/inner (leaves: cgroup v2 keeps
# processes out of a cgroup whose controllers are enabled below it), detached from the ssh
# session (its own session, stdio on /dev/null) so that CRIU can dump it.
TREE = ('setsid sh -c \'echo 0 > %(cg)s/db/cgroup.procs; '
        'sh -c "echo 0 > %(cg)s/worker/inner/cgroup.procs; exec sleep 1000" & exec sleep 1000\' '
        '</dev/null >/dev/null 2>&1 & echo $!')
IMAGES = '/root/crtest-systemd-images'
MOVED = 'crtest-ct2.service'
MOVED_CG = '/sys/fs/cgroup/machine.slice/' + MOVED


def tree_cgroups(ssh, pid):
    """{pid: its /proc/PID/cgroup line} of the tree's root and its child."""
    child = ssh('cat /proc/%s/task/%s/children' % (pid, pid)).stdout.split()
    found = {}
    for one in [pid] + child:
        found[one] = ssh('cat /proc/%s/cgroup' % one).stdout.strip()
    return found


def test_5_criu_restores_a_checkpointed_tree_into_a_new_unit_through_the_roles(systemd_vm, play):
    """criu_checkpoint of a tree in ct1's unit, ct1 stopped, then criu_restore
    with criu_restore_systemd_unit: a new delegated unit with ct1's limits,
    the subcgroups below it, CRIU's processes in them, and nothing removed by
    systemd at daemon-reload; a second run changes nothing."""
    pid = systemd_vm(TREE % {'cg': CG}).stdout.strip()
    assert pid.isdigit()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(set(tree_cgroups(systemd_vm, pid).values())) < 2:
        time.sleep(0.5)
    source = tree_cgroups(systemd_vm, pid)
    assert sorted(source.values()) == ['0::/machine.slice/%s/db' % UNIT,
                                       '0::/machine.slice/%s/worker/inner' % UNIT], source
    try:
        checkpoint = play.role('criu_checkpoint.yml', {
            'criu_checkpoint_pid': int(pid), 'criu_checkpoint_images_dir': IMAGES,
            'criu_checkpoint_cgroups': ['machine.slice/' + UNIT]})
        assert checkpoint['rc'] == 0 and checkpoint['failed'] == 0, checkpoint
        assert systemd_vm('test -d /proc/%s' % pid).returncode == 1  # the dump ended the tree
        assert play({'unit': UNIT, 'state': 'absent'})['removed'] is True
        restore = {'criu_restore_images_dir': IMAGES, 'criu_restore_systemd_unit': MOVED}
        restored = play.role('criu_restore.yml', restore)
        assert restored['rc'] == 0 and restored['failed'] == 0, restored
        assert sorted(tree_cgroups(systemd_vm, pid).values()) == [
            '0::/machine.slice/%s/db' % MOVED, '0::/machine.slice/%s/worker/inner' % MOVED]
        assert systemd_vm('systemctl show -P Delegate ' + MOVED).stdout.strip() == 'yes'
        assert cat(systemd_vm, *['%s/%s' % (MOVED_CG, f) for f in LIMITS]) == WANTED
        assert systemd_vm('systemctl daemon-reload').returncode == 0
        assert sorted(tree_cgroups(systemd_vm, pid).values()) == [
            '0::/machine.slice/%s/db' % MOVED, '0::/machine.slice/%s/worker/inner' % MOVED]
        assert cat(systemd_vm, *['%s/%s' % (MOVED_CG, f) for f in LIMITS]) == WANTED
        assert systemd_vm('systemctl show -P ActiveState ' + MOVED).stdout.strip() == 'active'
        again = play.role('criu_restore.yml', restore)
        assert again['rc'] == 0 and again['changed'] == 0, again
    finally:
        systemd_vm('kill %s; rm -rf %s' % (pid, IMAGES))
        gone = play({'unit': MOVED, 'state': 'absent'})
    assert not gone.get('failed') and systemd_vm('test -e ' + MOVED_CG).returncode == 1, gone


def test_6_state_absent_leaves_no_unit_and_no_cgroup(systemd_vm, play):
    assert play({'unit': UNIT, 'spec': SPEC})['unit_created'] is True  # test 5 stopped it
    checked = play({'unit': UNIT, 'state': 'absent'}, check=True)
    assert checked['changed'] is True and systemd_vm('test -d ' + CG).returncode == 0
    result = play({'unit': UNIT, 'state': 'absent'})
    assert result['changed'] is True and result['removed'] is True, result
    status = systemd_vm('systemctl status ' + UNIT)
    assert status.returncode == 4 and 'could not be found' in status.stderr, (status.returncode, status.stderr)
    assert systemd_vm('test -e ' + CG).returncode == 1
    assert play({'unit': UNIT, 'state': 'absent'})['changed'] is False


def test_7_an_unmapped_top_level_file_is_refused_by_name_and_nothing_is_written(systemd_vm, play):
    bad = {'version': 1, 'cgroups': {'ct2': {'memory.max': '100M', 'memory.oom.group': 1},
                                     'ct2/worker': {'pids.max': 5}}}
    result = play({'unit': 'crtest-bad.service', 'spec': bad})
    assert result.get('failed') and result['changed'] is False
    assert 'ct2' in result['msg'] and 'property memory.oom.group' in result['msg'], result['msg']
    assert 'crtest-bad.service' in result['msg']
    assert systemd_vm('systemctl status crtest-bad.service').returncode == 4
    assert systemd_vm('test -e /sys/fs/cgroup/machine.slice/crtest-bad.service').returncode == 1


LOCK_HOLDER = ('import fcntl, time\nfd = open("/run/lock/checkpoint_restore.cgroups.lock", "w")\n'
               'fcntl.flock(fd, fcntl.LOCK_EX)\nopen("/run/crtest-lock-held", "w").close()\ntime.sleep(120)\n')


def test_8_the_unit_part_waits_for_the_host_lock_and_writes_nothing_without_it(systemd_vm, play):
    """Another restore holds the host lock: with lock_timeout 0 the module
    fails before it reads or changes the unit, and no unit or cgroup appears.
    The spec has no subcgroups, so only the unit part can take the lock (the
    subtree's restore always took it)."""
    top_only = {'version': 1, 'cgroups': {'ct1': SPEC['cgroups']['ct1']}}
    started = systemd_vm("rm -f /run/crtest-lock-held; nohup /usr/bin/python3 -c '%s' >/dev/null 2>&1 & echo $!"
                         % LOCK_HOLDER)
    pid = started.stdout.strip()
    assert started.returncode == 0 and pid.isdigit(), (started.stdout, started.stderr)
    try:
        assert systemd_vm('for i in $(seq 100); do test -e /run/crtest-lock-held && exit 0; sleep 0.1; done; '
                          'exit 1').returncode == 0
        result = play({'unit': UNIT, 'spec': top_only, 'lock_timeout': 0})
        assert result.get('failed') and 'host lock' in result['msg'] and 'Nothing was written' in result['msg'], \
            result
        assert systemd_vm('systemctl status ' + UNIT).returncode == 4
        assert systemd_vm('test -e ' + CG).returncode == 1
    finally:
        systemd_vm('kill %s; rm -f /run/crtest-lock-held' % pid)
    # the holder is gone: the same call now restores, then the unit goes again
    result = play({'unit': UNIT, 'spec': top_only, 'lock_timeout': 10})
    assert not result.get('failed') and result['unit_created'], result
    assert cat(systemd_vm, *['%s/%s' % (CG, f) for f in LIMITS[:4]]) == WANTED[:4]
    assert play({'unit': UNIT, 'state': 'absent'})['removed'] is True
    assert systemd_vm('test -e ' + CG).returncode == 1
