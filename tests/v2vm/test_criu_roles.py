"""The roles criu_checkpoint and criu_restore, with the real CRIU and the real
ansible-playbook, on cgroup v1 and on cgroup v2: one VM per layout runs
tests/v2vm/criu_roles_in_vm.py (the two boot side by side, one per core),
which goes through strict, opport and bind mode and two failed restores, and
asks this machine to run each play against the VM over SSH
(vm_playbooks.py); the tests here assert on what it read from the kernel."""

import json
import os
import threading

import pytest

import vm_playbooks  # same directory
from criu_roles_in_vm import FAILED_RESTORE
from vm_playbooks import vm_host

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON = os.path.join(REPO, '.venv', 'bin', 'python')
SCRIPT = os.path.join(REPO, 'tests', 'v2vm', 'criu_roles_in_vm.py')
LAYOUTS = ('v1', 'v2')
# Under emulation one layout's plays take 20 to 25 minutes on a 2-core
# machine with the other layout's VM beside it (bind mode's premount is the
# longest: 3 to 4 minutes a run); more on a busy one.
RUN_TIMEOUT = 3600
BOOT_TIMEOUT = 300
# ct/app's pids.max (tests/v2vm/criu_in_vm.py LIMITS) less its two processes.
FORKS_BELOW_PIDS_MAX = 20 - 2
RESTORED = ('strict', 'opport', 'bind')


@pytest.fixture(scope='module')
def runs(v2vm, tmp_path_factory):
    """{layout: what criu_roles_in_vm.py found}, both VMs run at once, each
    with its own sshd and a PlaybookServer that runs the plays it asks for."""
    found = {}

    # Made here, not in the threads: pytest's temporary base is not thread-safe.
    shares = {kind: str(tmp_path_factory.mktemp('criu-roles-' + kind)) for kind in LAYOUTS}

    def run(kind):
        share = shares[kind]
        out = os.path.join(share, 'out.json')
        vmdir, port = os.path.join(share, 'vm'), vm_host.free_port()
        vm_host.make_ssh_files(vmdir, port)
        server = vm_playbooks.PlaybookServer(share, vmdir, port)
        server.start()
        command = ['sh', '-c', vm_host.guest_sshd(vmdir, foreground=False) + ' && exec "$@"', 'sh',
                   PYTHON, SCRIPT, out]
        try:
            result = v2vm(command, share=share, cwd=REPO, cgroup=kind, criu=True, ssh_port=port,
                          timeout=RUN_TIMEOUT, boot_timeout=BOOT_TIMEOUT, env={'PYTHONDONTWRITEBYTECODE': '1'})
            output, returncode = result.output, result.returncode
        except BaseException as exc:  # pytest.fail in the fixture: keep it for the tests
            output, returncode = 'v2vm: %s' % exc, None
        finally:
            server.stop()
        if server.error:
            output += '\nvm_playbooks: %s' % server.error
        data = {}
        if os.path.exists(out):
            with open(out) as handle:
                data = json.load(handle)
        data['_output'], data['_returncode'] = output, returncode
        found[kind] = data

    threads = [threading.Thread(target=run, args=(kind,)) for kind in LAYOUTS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return found


@pytest.fixture(params=LAYOUTS)
def run(request, runs):
    found = runs[request.param]
    assert found.get('_returncode') == 0 and found.get('done'), found.get('_output', '')[-6000:]
    return found


@pytest.mark.parametrize('mode', RESTORED)
def test_the_roles_checkpoint_and_restore(run, mode):
    step = run['scenarios'][mode]
    assert step['checkpoint']['rc'] == 0 and step['checkpoint']['failed'] == 0, step['checkpoint']
    assert step['restore']['rc'] == 0 and step['restore']['failed'] == 0, step['restore']
    assert step['restore']['changed'] > 0, step['restore']


@pytest.mark.parametrize('mode', RESTORED)
def test_every_process_is_back_in_its_own_cgroup(run, mode):
    assert run['original']['cgroup'] == run['expected_cgroup']
    assert run['scenarios'][mode]['after']['cgroup'] == run['expected_cgroup']


@pytest.mark.parametrize('mode', RESTORED)
def test_every_limit_on_every_level_equals_the_original(run, mode):
    """ct's limits too, which CRIU alone loses on v1, and every v2 limit,
    which CRIU alone loses on v2 (test_criu.py)."""
    original = run['original']['limits']
    assert all(v not in ('no cgroup', 'no file') for limits in original.values() for v in limits.values())
    assert run['scenarios'][mode]['after']['limits'] == original


def test_opport_started_from_a_tree_that_differed(run):
    before = run['scenarios']['opport']['before_restore']
    assert before['ct']['pids.max'] == '45'
    assert set(before['ct/db'].values()) == {'no cgroup'}
    assert before['ct/app'] == run['original']['limits']['ct/app']


@pytest.mark.parametrize('mode', RESTORED)
def test_pids_max_stops_a_fork_in_the_restored_process(run, mode):
    after = run['scenarios'][mode]['after']
    assert (after['forks'], after['fork_error']) == (FORKS_BELOW_PIDS_MAX, 'Resource temporarily unavailable')


@pytest.mark.parametrize('mode', RESTORED)
def test_a_second_restore_changes_nothing_while_the_processes_run(run, mode):
    step = run['scenarios'][mode]
    again = step['again']
    assert again['rc'] == 0 and again['failed'] == 0, again
    assert again['changed'] == 0, again['changed_tasks']
    assert step['after_again']['cgroup'] == run['expected_cgroup']
    assert step['after_again']['limits'] == run['original']['limits']


def test_bind_mode_restored_through_a_premounted_view(run):
    assert run['scenarios']['bind']['view_mounted'] is True


# One failed restore per layout, each in one mode.
FAILED = tuple(sorted(FAILED_RESTORE.items()))


@pytest.mark.parametrize('layout, mode', FAILED)
def test_a_failed_criu_restore_leaves_the_host_as_it_was(runs, layout, mode):
    run = runs[layout]
    assert run.get('_returncode') == 0 and run.get('done'), run.get('_output', '')[-6000:]
    step = run['scenarios']['fail_' + mode]
    restore = step['restore']
    assert restore['rc'] != 0 and restore['failed'] == 1, restore
    message = ' '.join(restore['messages'])
    assert 'Failed to restore the checkpoint in' in message, message
    assert 'were removed and the values it changed put back' in message, message
    # The cgroup restore did run before CRIU failed: it created the tree.
    assert restore['changed'] > 0, restore
    assert step['processes_left'] == []
    assert step['state_after'] == step['state_before']


@pytest.mark.parametrize('layout, mode', FAILED)
def test_after_a_failed_restore_the_next_one_succeeds(runs, layout, mode):
    """The scenario's own restore came right after the failed one: it starts
    from what the failed one left, nothing, and succeeds."""
    step = runs[layout]['scenarios'][mode]
    assert set(v for limits in step['before_restore'].values() for v in limits.values()) == {'no cgroup'}
    assert step['restore']['rc'] == 0 and step['restore']['failed'] == 0, step['restore']
    assert step['after']['limits'] == runs[layout]['original']['limits']
    assert step['after']['cgroup'] == runs[layout]['expected_cgroup']


def test_a_root_remap_moves_the_whole_tree_on_v2_and_is_refused_on_v1(run):
    """CRIU's --cgroup-root replaces its image's top directory: on v2 the
    checkpoint roots the image at ct, so the tree with its subcgroups comes
    back below r; on v1 that dump option fails, and the restore refuses the
    remap by name before anything is written."""
    step = run['scenarios']['remap']
    restore = step['restore']
    if run['layout'] == 'v1':
        assert restore['rc'] != 0 and restore['failed'] == 1, restore
        message = ' '.join(restore['messages'])
        assert 'below r: CRIU can move the tree only when its image is rooted' in message, message
        assert step['state_after'] == step['state_before']
        return
    assert restore['rc'] == 0 and restore['failed'] == 0, restore
    assert step['after']['cgroup'] == step['expected_cgroup']
    assert all(line.endswith(('/r/ct/app', '/r/ct/db')) for lines in step['expected_cgroup'].values()
               for line in lines if line.startswith('0::'))
    assert step['after']['limits'] == run['original']['limits']
    assert (step['after']['forks'], step['after']['fork_error']) == (FORKS_BELOW_PIDS_MAX,
                                                                     'Resource temporarily unavailable')


def test_migrate_moves_a_running_process_tree_with_its_limits(runs):
    """The migrate playbook with cgroup_fleet_migrate_pid, on cgroup v2 (on v1
    CRIU cannot move a tree below a new root, test_a_root_remap_...): the
    tree comes back on the destination below migrated, in bind mode through
    its premounted view, every process in its cgroup, every limit equal."""
    run = runs['v2']
    assert run.get('_returncode') == 0 and run.get('done'), run.get('_output', '')[-6000:]
    step = run['scenarios']['migrate']
    assert step['run']['rc'] == 0 and step['run']['failed'] == 0, step['run']
    # The images went through the controller with Ansible's own modules.
    assert {'Bring the images to the controller', 'Copy the images to the destination'} <= set(
        step['run']['changed_tasks']), step['run']['changed_tasks']
    assert step['view_mounted'] is True
    assert step['after']['cgroup'] == step['expected_cgroup']
    assert all(line.endswith(('/migrated/r/ct/app', '/migrated/r/ct/db')) for lines in step['expected_cgroup'].values()
               for line in lines if line.startswith('0::'))
    assert step['after']['limits'] == run['original']['limits']
    assert (step['after']['forks'], step['after']['fork_error']) == (FORKS_BELOW_PIDS_MAX,
                                                                     'Resource temporarily unavailable')
