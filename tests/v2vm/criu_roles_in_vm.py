"""The roles criu_checkpoint and criu_restore with the real CRIU, in the VM
(tools/v2vm.py --criu, --cgroup v1 or v2), run by the real ansible-playbook
on the machine outside over SSH, as an operator's controller would
(vm_playbooks.py: this script asks for each play through the shared
directory; it starts the processes and reads the kernel's files itself);
tests/v2vm/test_criu_roles.py boots one VM per layout, runs this script and
asserts on the JSON it writes.

    python criu_roles_in_vm.py OUT.json

One process tree (criu_in_vm.py's: a parent and a child in ct/app, a child
in ct/db, memory, pids and cpu limits on ct, ct/app and ct/db) goes through
these scenarios, in order, each recorded in OUT.json under its name:
  strict       checkpoint (the tree is dumped, CRIU kills it), every cgroup
               removed, restore in strict mode from nothing; then the
               restore role again while the processes run;
  opport       checkpoint, ct/db removed and ct's pids.max changed, restore
               in opport mode (adopts ct and ct/app, creates ct/db, converges
               pids.max); then again;
  bind         checkpoint, every cgroup removed, restore in bind mode through
               a premounted view of ct (the cgroup_premount role); then again;
  fail_strict  (v1, before strict's restore) and
  fail_bind    (v2, before bind's restore): a restore with a CRIU action
               script that fails at pre-restore, after the role's cgroup
               restore: what the host has before and after the run;
  remap        checkpoint, every cgroup removed, restore in strict mode
               below the root r: on v2 the tree comes back in r/ct; on v1
               the role refuses (CRIU cannot move a v1 image's tree);
  migrate      (v2) the migrate playbook with the tree's PID, from r/ct on
               the inventory's host vm to migrated/r/ct on its host
               destination (the same VM under a second name).
After each successful restore: each process's /proc/PID/cgroup, every limit
on every level, and how many forks the restored parent could make below
ct/app's pids.max (it forks on SIGUSR1 until the kernel says EAGAIN)."""

import ctypes
import json
import os
import itertools
import signal
import subprocess
import sys
import tempfile
import time

import criu_in_vm as vm  # same directory: the tree, its limits, the readers
import vm_playbooks  # same directory: the plays, run outside

REPO = vm.REPO
PLAYBOOKS = os.path.join(REPO, 'tests', 'v2vm', 'playbooks')
# The plays' request names, in the order they ran.
PLAY_NUMBERS = itertools.count(1)
# How many processes ct/app holds: the parent and its first child.
APP_TASKS = 2

# On SIGUSR1 the parent forks children that wait until a fork fails, writes
# how many it made to argv[3], then ends them; the rest is criu_in_vm.TREE.
PROBE = r'''
import os, signal, sys, time
probe = sys.argv[3]
def fork_until_refused(_signum, _frame):
    made = []
    error = ''
    while len(made) < 200:
        try:
            pid = os.fork()
        except OSError as exc:
            error = exc.strerror
            break
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        made.append(pid)
    for pid in made:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    with open(probe + '.tmp', 'w') as handle:
        handle.write('%d %s' % (len(made), error))
    os.rename(probe + '.tmp', probe)
signal.signal(signal.SIGUSR1, fork_until_refused)
'''
TREE = PROBE + vm.TREE

# Fails the restore at its first action-script stage, after the role's
# cgroup restore: a criu restore that fails for a reason of its own.
FAILING_SCRIPT = '''#!/bin/sh
[ "$CRTOOLS_SCRIPT_ACTION" = pre-restore ] && { echo "test: refusing the restore" >&2; exit 1; }
exit 0
'''


def fork_probe(pid, probe, timeout=60):
    """(forks made, the error that stopped them) by the restored parent."""
    if os.path.exists(probe):
        os.unlink(probe)
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while not os.path.exists(probe):
        if time.monotonic() > deadline:
            return None, 'no answer from process %d' % pid
        time.sleep(0.1)
    count, _sep, error = vm.read(probe).partition(' ')
    return int(count), error


# In which mode each layout shows a criu restore that fails after the
# cgroup restore (tests/v2vm/test_criu_roles.py reads it too).
FAILED_RESTORE = {'v1': 'strict', 'v2': 'bind'}


def playbook(name, variables, directory=PLAYBOOKS):
    """DIRECTORY/NAME.yml (tests/v2vm/playbooks/) with VARIABLES, run by ansible-playbook
    on the machine outside against this VM over SSH (vm_playbooks.py):
    {rc, ok, changed, failed, messages, changed_tasks, seconds}."""
    result = vm_playbooks.request('%02d-%s' % (next(PLAY_NUMBERS), name), os.path.join(directory, name + '.yml'),
                                  variables)
    vm.log('%s: rc %d, ok=%s changed=%s failed=%s, %.0fs' % (name, result['rc'], result['ok'], result['changed'],
                                                             result['failed'], result['seconds']))
    if result['rc'] != 0:
        vm.log(result['tail'])
    return result


def cgroup_state():
    """What a failed restore must leave as it was: every cgroup directory
    under the mountpoint, the values of the tree's limit files where they
    exist, and the mount table's cgroup and view mounts."""
    dirs = []
    for point, _fstype in vm.mounts():
        for root, subdirs, _files in os.walk(point):
            dirs.extend(os.path.join(root, d) for d in subdirs)
    with open('/proc/self/mountinfo') as handle:
        mounted = sorted(line.split()[4] for line in handle)
    return {'dirs': sorted(set(dirs)), 'mounts': mounted}


def read_limits_below(kind, root):
    """criu_in_vm.read_limits of the tree moved below root, by its old names."""
    found = {}
    for level in vm.LEVELS:
        found[level] = {}
        for name in vm.LIMITS[kind][level]:
            path = vm.limit_path(kind, root + '/' + level, name)
            try:
                found[level][name] = vm.read(path)
            except OSError:
                found[level][name] = 'no file'
    return found


def remove_below(root):
    """rmdir root and its subtree in every hierarchy (the remap scenario's)."""
    for point, _fstype in vm.mounts():
        top = os.path.join(point, root)
        if os.path.isdir(top):
            for path in sorted((d for d, _s, _f in os.walk(top)), key=lambda d: -d.count('/')):
                os.rmdir(path)


def unmount_view(view):
    """Take down the view that bind mode premounted (the test made it)."""
    if os.path.ismount(view):
        subprocess.run(['umount', '-R', view], check=True)


def migrate(out, tree, kind, work, pid, probe, save):
    """The migrate playbook with the tree's PID, from the inventory's host vm
    to its host destination (the same VM under another name): the tree, now
    in r/ct, is checkpointed at the source, its images go through the
    controller, and it comes back in bind mode below migrated (migrated/r/ct),
    its limits compared with the source's by the playbook and here."""
    step = {}
    out['scenarios']['migrate'] = step
    view = os.path.join(work, 'migrate-view')
    step['run'] = playbook('migrate', {
        'cgroup_fleet_migrate_source': 'vm', 'cgroup_fleet_migrate_destination': 'destination',
        'cgroup_fleet_migrate_container': 'r/ct', 'cgroup_fleet_migrate_pid': pid,
        'cgroup_fleet_migrate_images_dir': os.path.join(work, 'migrate-images'),
        # The source and the destination are one VM: the destination unpacks
        # the images it got from the controller into a directory of its own.
        'cgroup_fleet_migrate_destination_images_dir': os.path.join(work, 'migrate-images-destination'),
        'cgroup_fleet_migrate_view': view}, directory=os.path.join(REPO, 'playbooks'))
    step['expected_cgroup'] = {str(p): vm.expected_lines(kind, 'migrated/r/' + level) for p, level in tree.items()}
    step['after'] = {'cgroup': vm.placement(tree), 'limits': read_limits_below(kind, 'migrated/r')}
    step['after']['forks'], step['after']['fork_error'] = fork_probe(pid, probe)
    step['view_mounted'] = os.path.ismount(view)
    save()
    vm.kill_tree(tree)
    unmount_view(view)
    remove_below('migrated')


def main():
    out_path = sys.argv[1]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(vm.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SystemExit('prctl(PR_SET_CHILD_SUBREAPER) failed')
    kind = vm.layout()
    work = tempfile.mkdtemp(prefix='criu-roles-')
    probe = os.path.join(work, 'fork-probe')
    view = os.path.join(work, 'view')
    script = os.path.join(work, 'fail-restore.sh')
    with open(script, 'w') as handle:
        handle.write(FAILING_SCRIPT)
    os.chmod(script, 0o755)
    out = {'layout': kind, 'scenarios': {}}

    def save():
        with open(out_path, 'w') as handle:
            json.dump(out, handle, indent=1, sort_keys=True)

    vm.build_tree(kind)
    parent, tree = vm.start_tree(kind, TREE, [probe])
    out['tree'] = {str(pid): level for pid, level in tree.items()}
    out['expected_cgroup'] = {str(pid): vm.expected_lines(kind, level) for pid, level in tree.items()}
    out['original'] = {'limits': vm.read_limits(kind), 'cgroup': vm.placement(tree)}
    save()
    pid = parent.pid

    def checkpoint(name):
        images = os.path.join(work, 'images-' + name)
        result = playbook('criu_checkpoint', {'criu_checkpoint_pid': pid, 'criu_checkpoint_images_dir': images},
                          )
        if result['rc'] != 0:
            out['failed_checkpoint'] = result
            save()
            raise SystemExit('the checkpoint failed: %s' % result['messages'])
        vm.wait_gone(tree)
        return images, result

    def restore(images, mode, **extra):
        variables = {'criu_restore_images_dir': images, 'criu_restore_mode': mode}
        if mode == 'bind':
            variables['criu_restore_view'] = view
        variables.update(extra)
        return playbook('criu_restore', variables)

    def observe():
        forks, error = fork_probe(pid, probe)
        return {'cgroup': vm.placement(tree), 'limits': vm.read_limits(kind), 'forks': forks, 'fork_error': error}

    def fail_restore(images, mode):
        """A restore whose CRIU fails after the role's cgroup restore: what the
        host had before and after the run, and the processes it left."""
        step = {}
        out['scenarios']['fail_' + mode] = step
        step['state_before'] = cgroup_state()
        step['restore'] = restore(images, mode, criu_restore_criu_args=['--action-script', script])
        vm.reap()
        step['processes_left'] = [p for p in tree if vm.alive(p)]
        step['state_after'] = cgroup_state()
        save()
        if step['processes_left']:
            vm.kill_tree(tree)
        unmount_view(view)

    def ran(name, mode, prepare, fail_first=False):
        """checkpoint, prepare the host, (a failed restore, which must leave the
        host as prepared,) restore, observe, restore again, observe."""
        step = {}
        out['scenarios'][name] = step
        images, step['checkpoint'] = checkpoint(name)
        prepare()
        if fail_first:
            fail_restore(images, mode)
        step['before_restore'] = vm.read_limits(kind)
        step['restore'] = restore(images, mode)
        step['after'] = observe()
        save()
        step['again'] = restore(images, mode)
        step['after_again'] = observe()
        save()

    def nothing_left():
        vm.remove_tree()

    def part_of_the_tree():
        """opport's case: ct and ct/app exist (empty), ct/db does not, and
        ct's pids.max differs from the checkpoint's."""
        for point, _fstype in vm.mounts():
            db = os.path.join(point, 'ct', 'db')
            if os.path.isdir(db):
                os.rmdir(db)
        vm.write(vm.limit_path(kind, 'ct', 'pids.max'), '45')

    # A failed restore costs a play: strict mode shows it on v1, bind mode on v2.
    ran('strict', 'strict', nothing_left, fail_first=FAILED_RESTORE[kind] == 'strict')
    ran('opport', 'opport', part_of_the_tree)
    ran('bind', 'bind', nothing_left, fail_first=FAILED_RESTORE[kind] == 'bind')
    out['scenarios']['bind']['view_mounted'] = os.path.ismount(view)
    unmount_view(view)

    # A root remap: on v2 the image is rooted at ct (criu dump --cgroup-root
    # /ct), so the tree moves below r; on v1 the role refuses, changing nothing.
    step = {}
    out['scenarios']['remap'] = step
    images, step['checkpoint'] = checkpoint('remap')
    vm.remove_tree()
    step['state_before'] = cgroup_state()
    step['restore'] = restore(images, 'strict', criu_restore_root='r')
    step['state_after'] = cgroup_state()
    if kind == 'v2':
        moved = dict((str(p), vm.expected_lines(kind, 'r/' + level)) for p, level in tree.items())
        step['expected_cgroup'] = moved
        step['after'] = {'cgroup': vm.placement(tree), 'limits': read_limits_below(kind, 'r')}
        step['after']['forks'], step['after']['fork_error'] = fork_probe(pid, probe)
    save()
    if kind == 'v2':
        migrate(out, tree, kind, work, pid, probe, save)
    vm.kill_tree(tree)
    remove_below('r')
    vm.remove_tree()
    out['done'] = True
    save()
    vm.log('done')


if __name__ == '__main__':
    main()
