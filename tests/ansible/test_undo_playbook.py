"""The flow a restore role uses, through ansible-playbook inside the cgroup
sandbox: restore the cgroups, a later step fails, the rescue runs
cgroup_undo with the registered record, and the kernel's files are as before."""

import json
import os
import re
import sys

import yaml

from modrun import COLLECTIONS, cgroups, read, snapshot

VENV_BIN = os.path.dirname(sys.executable)
SPEC = {'version': 1, 'cgroups': {
    '/': {'pids.max': 300, 'memory.limit_in_bytes': '2G'},
    'ct101': {'controllers': ['cpu', 'memory', 'pids'],
              'perms': {'mode': '0750', 'uid': 1000},
              'properties': {'memory.limit_in_bytes': '512M', 'cpu.shares': 512, 'pids.max': 200}},
    'ct101/worker': {'memory.limit_in_bytes': 100000000, 'pids.max': 20}}}


def _play(result_file, failing_step):
    return [{
        'name': 'Restore a container, and take its cgroups back when the restore of its processes fails',
        'hosts': 'localhost',
        'gather_facts': False,
        'tasks': [{
            'block': [
                {'name': 'Restore the cgroups',
                 'checkpoint_restore.cgroups.cgroup_restore': {'spec': SPEC},
                 'register': 'cgroups'},
                dict(failing_step, name='Restore the processes (fails here, as a failed criu restore would)'),
            ],
            'rescue': [
                {'name': 'Remove what the restore created and put back what it changed',
                 'checkpoint_restore.cgroups.cgroup_undo': {'undo': '{{ cgroups.undo }}'},
                 'register': 'undone'},
                {'name': 'Keep the results for the test',
                 'ansible.builtin.copy': {'content': '{{ {"restore": cgroups, "undo": undone} | to_json }}',
                                          'dest': result_file, 'mode': '0600'},
                 'check_mode': False, 'changed_when': False},
            ]}]}]


def _playbook(sandbox, failing_step, *args):
    result_file = os.path.join(sandbox.work, 'undo-result.json')
    path = os.path.join(sandbox.work, 'undo-play.yml')
    with open(path, 'w') as handle:
        yaml.safe_dump(_play(result_file, failing_step), handle)
    inventory = os.path.join(sandbox.work, 'undo-inventory.ini')
    with open(inventory, 'w') as handle:
        handle.write('localhost ansible_connection=local ansible_python_interpreter=%s\n' % sys.executable)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1',
               ANSIBLE_LOCAL_TEMP=os.path.join(sandbox.work, 'ansible-tmp'),
               ANSIBLE_REMOTE_TEMP=os.path.join(sandbox.work, 'ansible-tmp'))
    proc = sandbox.run([os.path.join(VENV_BIN, 'ansible-playbook'), '-i', inventory, path] + list(args), env=env)
    output = proc.stdout + proc.stderr
    assert 'Traceback' not in output, output
    recap = re.search(r'localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)\s+'
                      r'skipped=\d+\s+rescued=(\d+)', proc.stdout)
    assert recap, output
    results = None
    if os.path.exists(result_file):
        with open(result_file) as handle:
            results = json.load(handle)
    return proc.returncode, recap, results, output


def test_a_failing_step_after_the_restore_is_rescued_by_cgroup_undo(sandbox):
    before = snapshot(sandbox)
    rc, recap, results, output = _playbook(sandbox, {'ansible.builtin.command': 'false', 'changed_when': True})
    # the block failed, the rescue ran and succeeded: the play succeeds
    assert rc == 0 and recap.group(3) == '0' and recap.group(4) == '1', output
    restore, undone = results['restore'], results['undo']
    assert restore['changed'] is True and restore['undo']['steps'], restore
    assert undone['changed'] is True and undone['kept'] == [] and not undone.get('failed'), undone
    assert {(u['hierarchy'], u['cgroup']) for u in undone['undone'] if u['step'] == 'mkdir'} == \
        {(h, c) for h in ('cpu', 'memory', 'pids') for c in ('ct101', 'ct101/worker')}
    # the kernel's own files: as before the play
    assert snapshot(sandbox) == before
    assert read(sandbox, 'pids', 'pids.max') == 'max'
    assert read(sandbox, 'memory', 'memory.limit_in_bytes') == '9223372036854771712'
    for hierarchy in ('cpu', 'memory', 'pids'):
        assert cgroups(sandbox, hierarchy) == []


def test_in_check_mode_the_flow_changes_nothing(sandbox):
    before = snapshot(sandbox)
    # a command is skipped in check mode; fail runs in check mode too
    rc, recap, results, output = _playbook(sandbox, {'ansible.builtin.fail': {'msg': 'criu restore failed'}},
                                           '--check', '--diff')
    assert rc == 0 and recap.group(4) == '1', output
    assert snapshot(sandbox) == before
    # check mode changed nothing, so its record has nothing to undo
    assert results['restore']['changed'] is True and results['restore']['undo']['steps'] == [], results
    assert results['undo']['changed'] is False and results['undo']['undone'] == [], results
