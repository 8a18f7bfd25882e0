"""cgroup_checkpoint on a real process tree in sandbox cgroups: what it saves
beside the images, the criu dump command line, and its failures. The real
criu cannot run on this machine's kernel (docs/CRIU.md), so here a small
script stands in for it and records how it was called; the real criu runs
through this module in the VM (tests/v2vm/test_criu_roles.py)."""

import json
import os
import stat

import pytest

from modrun import read, run, run_module
from proctree import start_tree, stop_tree

SPEC = {'version': 1, 'cgroups': {'ct': {'controllers': ['pids'], 'properties': {'pids.max': 50}},
                                  'ct/app': {'pids.max': 20}, 'ct/db': {'pids.max': 10}}}
# Writes how it was called into the images directory and a log line, then
# exits with the code in its environment's file (0 unless told).
FAKE_CRIU = r'''#!/bin/sh
images=$5
printf '%s\n' "$@" > "$images/argv"
printf 'Info: fake dump\n' > "$images/dump.log"
code=$(cat "$(dirname "$0")/exit-code" 2>/dev/null || echo 0)
if [ "$code" != 0 ]; then
  printf '(00.01) Error (criu/cr-dump.c:1): fake reason one\n(00.02) Error (criu/cr-dump.c:2): fake reason two\n' >> "$images/dump.log"
fi
exit "$code"
'''


def fake_criu(sandbox, exit_code=0):
    path = os.path.join(sandbox.work, 'criu')
    with open(path, 'w') as handle:
        handle.write(FAKE_CRIU)
    os.chmod(path, 0o755)
    with open(os.path.join(sandbox.work, 'exit-code'), 'w') as handle:
        handle.write(str(exit_code))
    return path


def load(path):
    with open(path) as handle:
        return json.load(handle)


class Tree:
    """SPEC restored, a tree of three processes running in ct/app (two) and
    ct/db, an images directory to be; stop() ends the processes."""

    def __init__(self, sandbox):
        assert not run(sandbox, spec=SPEC).get('failed')
        self.proc, self.pids = start_tree(sandbox, 'pids', ['ct/app', 'ct/app', 'ct/db'])
        self.images = os.path.join(sandbox.work, 'images')

    def stop(self):
        stop_tree(self.proc, self.pids)


@pytest.fixture
def tree(sandbox):
    made = Tree(sandbox)
    try:
        yield made
    finally:
        made.stop()


def test_the_snapshot_and_the_record_are_saved_beside_the_images_then_criu_dumps(sandbox, tree):
    pids, images = tree.pids, tree.images
    criu = fake_criu(sandbox)
    done = run_module(sandbox, 'cgroup_checkpoint', pid=pids[0], images_dir=images, criu=criu,
                      leave_running=True, criu_args=['--shell-job'], properties=['pids.max'])
    assert not done.get('failed') and done['changed'] is True and done['rc'] == 0, done
    assert stat.S_IMODE(os.stat(images).st_mode) == 0o700
    # criu ran once, with the tree's root, the images and what was asked
    called = open(os.path.join(images, 'argv')).read().split('\n')[:-1]
    assert called == done['argv'][1:]
    assert called == ['dump', '--tree', str(pids[0]), '--images-dir', images, '--log-file', 'dump.log',
                      '-v4', '--leave-running', '--shell-job']  # no --cgroup-root on a v1 host
    # the whole container tree and its limits, ct's own included
    saved = load(os.path.join(images, 'cgroups.json'))['cgroups']
    assert {path: entry['properties'] for path, entry in saved.items()} == {
        'ct': {'pids.max': 50}, 'ct/app': {'pids.max': 20}, 'ct/db': {'pids.max': 10}}
    # where each process was, which the criu_restore role checks against
    record = load(os.path.join(images, 'cgroup-tasks.json'))
    assert record == done['record']
    assert stat.S_IMODE(os.stat(os.path.join(images, 'cgroup-tasks.json')).st_mode) == 0o600
    assert (record['pid'], record['paths'], record['image_root']) == (pids[0], ['ct'], '')
    assert record['tops'] == {'pids': 'ct'}
    placed = {task['pid']: task['cgroups']['pids'] for task in record['tasks']}
    assert placed == {pids[0]: 'ct/app', pids[1]: 'ct/app', pids[2]: 'ct/db'}
    # nothing was changed in the cgroups, and the processes run on
    assert read(sandbox, 'pids', 'ct', 'pids.max') == '50'
    assert all(os.path.exists('/proc/%d' % pid) for pid in pids)


def test_check_mode_finds_the_tree_and_writes_nothing(sandbox, tree):
    pids, images = tree.pids, tree.images
    found = run_module(sandbox, 'cgroup_checkpoint', check=True, pid=pids[0], images_dir=images,
                       criu=fake_criu(sandbox))
    assert not found.get('failed') and found['changed'] is True, found
    assert found['record']['paths'] == ['ct'] and found['argv'][1:4] == ['dump', '--tree', str(pids[0])]
    assert not os.path.exists(images)


def test_a_failed_dump_names_criu_s_reason_and_keeps_the_snapshot(sandbox, tree):
    pids, images = tree.pids, tree.images
    failed = run_module(sandbox, 'cgroup_checkpoint', pid=pids[0], images_dir=images,
                        criu=fake_criu(sandbox, exit_code=3))
    assert failed.get('failed') and failed['changed'] is True and failed['rc'] == 3, failed
    message = failed['msg']
    assert message.startswith('Failed to dump process tree %d with CRIU (exit code 3): ' % pids[0]), message
    # the log's last error lines, CRIU's own words
    assert 'fake reason one' in message and 'fake reason two' in message, message
    assert os.path.join(images, 'dump.log') in message and 'no cgroup was changed' in message, message
    assert load(os.path.join(images, 'cgroups.json'))['cgroups']['ct']['properties']['pids.max'] == 50


def test_no_criu_or_no_process_is_refused_before_anything_is_written(sandbox, tree):
    pids, images = tree.pids, tree.images
    missing = os.path.join(sandbox.work, 'no-such-criu')
    refused = run_module(sandbox, 'cgroup_checkpoint', pid=pids[0], images_dir=images, criu=missing)
    assert refused.get('failed') and refused['changed'] is False, refused
    assert ('%s is not an executable found on this host' % missing) in refused['msg'], refused
    assert not os.path.exists(images)
    tree.stop()
    gone = run_module(sandbox, 'cgroup_checkpoint', pid=pids[0], images_dir=images, criu=fake_criu(sandbox))
    assert gone.get('failed') and 'process %d: it is not running' % pids[0] in gone['msg'], gone
    assert not os.path.exists(images)


# Stands in for criu restore: records how it was called, then does what
# moves.sh (written by the test) says, as CRIU would move the restored tasks
# into the cgroups that are there; exits with the code in exit-code.
FAKE_CRIU_RESTORE = r'''#!/bin/sh
here=$(dirname "$0")
images=$4
printf '%s\n' "$@" >> "$images/restore-calls"
code=$(cat "$here/exit-code" 2>/dev/null || echo 0)
if [ "$code" != 0 ]; then
  printf '(00.03) Error (criu/cr-restore.c:9): fake restore reason\n' > "$images/restore.log"
  exit "$code"
fi
[ -f "$here/moves.sh" ] && sh "$here/moves.sh"
exit 0
'''


def fake_criu_restore(sandbox, moves, exit_code=0):
    """moves: [(pid, view path of a cgroup.procs)], done by the stand-in."""
    path = os.path.join(sandbox.work, 'criu-restore')
    with open(path, 'w') as handle:
        handle.write(FAKE_CRIU_RESTORE)
    os.chmod(path, 0o755)
    with open(os.path.join(sandbox.work, 'exit-code'), 'w') as handle:
        handle.write(str(exit_code))
    with open(os.path.join(sandbox.work, 'moves.sh'), 'w') as handle:
        handle.write(''.join('echo %d > %s\n' % (pid, procs) for pid, procs in moves))
    return path


def calls(images):
    try:
        with open(os.path.join(images, 'restore-calls')) as handle:
            return handle.read().count('restore\n')
    except FileNotFoundError:
        return 0


def checkpointed(sandbox, pids, images):
    """A checkpoint of the running tree (the stand-in dump leaves it running)."""
    done = run_module(sandbox, 'cgroup_checkpoint', pid=pids[0], images_dir=images, criu=fake_criu(sandbox),
                      properties=['pids.max'])
    assert not done.get('failed'), done
    return done['record']


def test_info_reads_the_record_and_names_the_snapshot_or_criu_s_image(sandbox, tree):
    pids, images = tree.pids, tree.images
    record = checkpointed(sandbox, pids, images)
    info = run_module(sandbox, 'cgroup_checkpoint_info', images_dir=images)
    assert not info.get('failed') and info['changed'] is False, info
    assert (info['src'], info['snapshot'], info['record']) == (os.path.join(images, 'cgroups.json'), True, record)
    alone = os.path.join(sandbox.work, 'images-of-criu-alone')
    os.makedirs(alone)
    info = run_module(sandbox, 'cgroup_checkpoint_info', images_dir=alone)
    assert (info['src'], info['snapshot'], info['record']) == (os.path.join(alone, 'cgroup.img'), False, {}), info
    with open(os.path.join(images, 'cgroup-tasks.json'), 'w') as handle:
        handle.write('{"version": 7}')
    bad = run_module(sandbox, 'cgroup_checkpoint_info', images_dir=images)
    assert bad.get('failed') and 'Invalid checkpoint record %s/cgroup-tasks.json' % images in bad['msg'], bad


def test_criu_restore_moves_the_processes_checks_them_and_runs_once(sandbox, tree):
    pids, images = tree.pids, tree.images
    checkpointed(sandbox, pids, images)
    # As if the processes were gone and back elsewhere: ct/db's in ct.
    with open(sandbox.path('pids', 'ct', 'cgroup.procs'), 'w') as handle:
        handle.write(str(pids[2]))
    criu = fake_criu_restore(sandbox, [(pids[2], '/sys/fs/cgroup/pids/ct/db/cgroup.procs')])
    check = run_module(sandbox, 'cgroup_criu_restore', check=True, images_dir=images, criu=criu)
    assert not check.get('failed') and check['changed'] is True and check['in_place'] is False, check
    assert calls(images) == 0
    done = run_module(sandbox, 'cgroup_criu_restore', images_dir=images, criu=criu)
    assert not done.get('failed') and done['changed'] is True and done['in_place'] is True, done
    assert calls(images) == 1 and done['rc'] == 0
    assert done['argv'][1:] == ['restore', '--restore-detached', '--images-dir', images, '--log-file',
                                'restore.log', '-v4', '--manage-cgroups=soft']
    assert read(sandbox, 'pids', 'ct', 'db', 'cgroup.procs') == str(pids[2])
    # a second run: every process in its cgroup, so CRIU is not run again
    again = run_module(sandbox, 'cgroup_criu_restore', images_dir=images, criu=criu)
    assert not again.get('failed') and again['changed'] is False and again['in_place'] is True, again
    assert calls(images) == 1


def test_criu_restore_fails_naming_criu_s_reason_or_the_process_left_out(sandbox, tree):
    pids, images = tree.pids, tree.images
    checkpointed(sandbox, pids, images)
    with open(sandbox.path('pids', 'ct', 'cgroup.procs'), 'w') as handle:
        handle.write(str(pids[2]))
    failing = fake_criu_restore(sandbox, [], exit_code=2)
    failed = run_module(sandbox, 'cgroup_criu_restore', images_dir=images, criu=failing)
    assert failed.get('failed') and failed['changed'] is True and failed['rc'] == 2, failed
    assert failed['msg'] == ('criu restore failed (exit code 2): (00.03) Error (criu/cr-restore.c:9): fake '
                             'restore reason. See %s/restore.log.' % images), failed
    # CRIU succeeds but a process is not where the checkpoint had it
    idle = fake_criu_restore(sandbox, [])
    left = run_module(sandbox, 'cgroup_criu_restore', images_dir=images, criu=idle)
    assert left.get('failed'), left
    assert 'process %d is in pids:ct, not in pids:ct/db' % pids[2] in left['msg'], left
    # a new root needs an image rooted at the tree's top (cgroup v2 only)
    moved = run_module(sandbox, 'cgroup_criu_restore', images_dir=images, criu=idle, root='r')
    assert moved.get('failed') and moved['changed'] is False, moved
    assert 'CRIU can move the tree only when its image is rooted' in moved['msg'], moved
    assert calls(images) == 2
