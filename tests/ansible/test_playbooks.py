"""cgroup_restore through ansible-playbook against localhost, inside the
cgroup sandbox: check mode, diff, changed, idempotence and the kernel's files."""

import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from modrun import COLLECTIONS, read, snapshot

VENV_BIN = os.path.dirname(sys.executable)

PLAY = {
    'name': 'Restore a container',
    'hosts': 'localhost',
    'gather_facts': False,
    'tasks': [{
        'name': 'Restore ct101',
        'checkpoint_restore.cgroups.cgroup_restore': {
            'mode': '{{ restore_mode | default("strict") }}',
            'spec': {'version': 1, 'cgroups': {
                'ct101': {'controllers': ['cpu', 'memory', 'pids'],
                          'perms': {'mode': '0750', 'uid': 1000},
                          'properties': {'memory.limit_in_bytes': '512M', 'cpu.shares': 512, 'pids.max': 200}},
                'ct101/worker': {'memory.limit_in_bytes': 100000000, 'cpu.cfs_quota_us': 50000}}}},
        'register': 'restore'}],
}


def _python(version):
    """A working target interpreter of this version, from pyenv or PATH
    (pyenv's shims refuse versions that are not active, so each is tried)."""
    candidates = []
    try:
        root = subprocess.run(['pyenv', 'root'], stdout=subprocess.PIPE, universal_newlines=True, check=False).stdout.strip()
        candidates += sorted(glob.glob(os.path.join(root, 'versions', version + '*', 'bin', 'python' + version)))
    except OSError:
        pass
    if shutil.which('python' + version):
        candidates.append(shutil.which('python' + version))
    for candidate in candidates:
        if subprocess.run([candidate, '-c', 'pass'], stderr=subprocess.DEVNULL, check=False).returncode == 0:
            return candidate
    return None


def playbook(sandbox, play, *args, interpreter=None, tag=''):
    """Run the play; returns (rc, changed count from the recap, registered
    result of its first task, full output). `tag` keeps concurrent runs apart."""
    result_file = os.path.join(sandbox.work, 'result%s.json' % tag)
    play = dict(play, tasks=[dict(play['tasks'][0], ignore_errors=True), {
        'name': 'Keep the result for the test',
        'ansible.builtin.copy': {'content': '{{ restore | to_json }}', 'dest': result_file, 'mode': '0600'},
        'check_mode': False, 'changed_when': False}])
    path = os.path.join(sandbox.work, 'play%s.yml' % tag)
    with open(path, 'w') as handle:
        yaml.safe_dump([play], handle)
    inventory = os.path.join(sandbox.work, 'inventory%s.ini' % tag)
    with open(inventory, 'w') as handle:
        handle.write('localhost ansible_connection=local ansible_python_interpreter=%s\n'
                     % (interpreter or sys.executable))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1',
               ANSIBLE_LOCAL_TEMP=os.path.join(sandbox.work, 'ansible-tmp'),
               ANSIBLE_REMOTE_TEMP=os.path.join(sandbox.work, 'ansible-tmp'))
    proc = sandbox.run([os.path.join(VENV_BIN, 'ansible-playbook'), '-i', inventory, path] + list(args), env=env)
    output = proc.stdout + proc.stderr
    assert 'Traceback' not in output, output
    recap = re.search(r'localhost\s*:\s*ok=(\d+)\s+changed=(\d+)', proc.stdout)
    assert recap and os.path.exists(result_file), output
    with open(result_file) as handle:
        task = json.load(handle)
    return proc.returncode, int(recap.group(2)), task, output


def test_check_mode_then_real_run_then_no_change(sandbox):
    before = snapshot(sandbox)
    rc, changed, task, output = playbook(sandbox, PLAY, '--check', '--diff')
    assert rc == 0 and changed == 1 and task['changed'], output
    assert snapshot(sandbox) == before, 'check mode wrote something'
    # the diff is readable text in the default output
    assert '+memory:ct101/worker memory.limit_in_bytes = 99999744' in output, output
    assert '+cpu:ct101 cpu.shares = 512' in output, output
    rc, changed, task, output = playbook(sandbox, PLAY)
    assert rc == 0 and changed == 1, output
    assert [w['after'] for w in task['writes'] if w['cgroup'] == 'ct101/worker' and w['hierarchy'] == 'memory'] \
        == ['99999744']
    assert read(sandbox, 'memory', 'ct101', 'worker', 'memory.limit_in_bytes') == '99999744'
    assert read(sandbox, 'cpu', 'ct101', 'worker', 'cpu.cfs_quota_us') == '50000'
    assert read(sandbox, 'pids', 'ct101', 'pids.max') == '200'
    st = os.stat(sandbox.path('cpu', 'ct101'))
    assert (st.st_mode & 0o777, st.st_uid) == (0o750, 1000)
    for mode in ('strict', 'opport', 'bind'):
        rc, changed, task, output = playbook(sandbox, PLAY, '-e', 'restore_mode=%s' % mode)
        assert rc == 0 and changed == 0 and not task['changed'], (mode, output)


def test_failure_is_one_clear_message(sandbox):
    play = dict(PLAY, tasks=[dict(PLAY['tasks'][0])])
    play['tasks'][0]['checkpoint_restore.cgroups.cgroup_restore'] = {
        'mode': 'strict,opport', 'spec': {'version': 1, 'cgroups': {'ct': {'pids.max': 1}}}}
    rc, changed, task, output = playbook(sandbox, play)
    assert task['failed'] and changed == 0, output
    assert 'cannot be combined' in task['msg'] and 'strict, opport or bind' in task['msg']


@pytest.mark.parametrize('version', ['3.9', '3.13'])
def test_runs_on_old_and_new_target_pythons(sandbox, version):
    python = _python(version)
    if python is None:
        if os.environ.get('CI'):
            pytest.fail('Python %s is needed as a target interpreter in CI' % version)
        pytest.skip('Python %s is not installed' % version)
    rc, changed, task, output = playbook(sandbox, PLAY, interpreter=python)
    assert rc == 0 and changed == 1 and not task.get('failed'), output
    assert read(sandbox, 'memory', 'ct101', 'memory.limit_in_bytes') == str(512 << 20)
    rc, changed, task, output = playbook(sandbox, PLAY, interpreter=python)
    assert rc == 0 and changed == 0, output
