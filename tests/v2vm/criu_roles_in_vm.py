"""The roles criu_checkpoint and criu_restore with the real CRIU, run by the
real ansible-playbook inside the VM (tools/v2vm.py --criu, --cgroup v1 or
v2; the VM is its own controller, connection local);
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
  fail_strict  checkpoint, every cgroup removed, restore in strict mode with
  fail_bind    (and in bind mode) a CRIU action script that fails at
               pre-restore, after the role's cgroup restore: what the host
               has before and after the run; then the same restore without
               the script;
  remap        checkpoint, every cgroup removed, restore in strict mode
               below the root r: on v2 the tree comes back in r/ct; on v1
               the role refuses (CRIU cannot move a v1 image's tree).
After each successful restore: each process's /proc/PID/cgroup, every limit
on every level, and how many forks the restored parent could make below
ct/app's pids.max (it forks on SIGUSR1 until the kernel says EAGAIN)."""

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import criu_in_vm as vm  # same directory: the tree, its limits, the readers

REPO = vm.REPO
PLAYBOOKS = os.path.join(REPO, 'tests', 'v2vm', 'playbooks')
ANSIBLE_PLAYBOOK = os.path.join(REPO, '.venv', 'bin', 'ansible-playbook')
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


RECAP = re.compile(r'^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', re.M)


def playbook(name, variables, work):
    """ansible-playbook of tests/v2vm/playbooks/NAME.yml with VARIABLES:
    {rc, ok, changed, failed, messages, changed_tasks, seconds}, from the
    default callback's recap and task lines."""
    fd, path = tempfile.mkstemp(prefix='vars-', suffix='.json', dir=work)
    with os.fdopen(fd, 'w') as handle:
        json.dump(variables, handle)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=vm.COLLECTIONS, HOME=work,
               ANSIBLE_LOCAL_TEMP=os.path.join(work, 'local'), ANSIBLE_REMOTE_TMP=os.path.join(work, 'remote'),
               ANSIBLE_PYTHON_INTERPRETER='/usr/bin/python3', ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0',
               ANSIBLE_RETRY_FILES_ENABLED='0')
    begin = time.monotonic()
    proc = subprocess.run([ANSIBLE_PLAYBOOK, '-i', 'localhost,', os.path.join(PLAYBOOKS, name + '.yml'),
                           '-e', '@' + path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, env=env, cwd=work, check=False)
    seconds = round(time.monotonic() - begin, 1)
    recap = RECAP.search(proc.stdout)
    task, changed_tasks, messages = None, [], []
    for line in proc.stdout.splitlines():
        if line.startswith('TASK ['):
            task = line[len('TASK ['):].split(']')[0]
        elif line.startswith('changed: [localhost]'):
            changed_tasks.append(task)
        elif line.startswith(('fatal: [localhost]', 'failed: [localhost]')) or '[ERROR]' in line:
            messages.append('%s: %s' % (task, line[:3000]))
    ok, changed, _unreachable, failed = (int(n) for n in recap.groups()) if recap else (0, None, 0, 1)
    vm.log('%s: rc %d, ok=%s changed=%s failed=%s, %.0fs' % (name, proc.returncode, ok, changed, failed, seconds))
    if proc.returncode != 0:
        vm.log(proc.stdout[-4000:])
    return {'rc': proc.returncode, 'ok': ok, 'changed': changed, 'failed': failed, 'messages': messages,
            'changed_tasks': changed_tasks, 'seconds': seconds}


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
                          work)
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
        return playbook('criu_restore', variables, work)

    def observe():
        forks, error = fork_probe(pid, probe)
        return {'cgroup': vm.placement(tree), 'limits': vm.read_limits(kind), 'forks': forks, 'fork_error': error}

    def ran(name, images, mode, prepare):
        """checkpoint, prepare the host, restore, observe, restore again, observe."""
        step = {}
        out['scenarios'][name] = step
        images, step['checkpoint'] = checkpoint(name)
        prepare()
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

    ran('strict', None, 'strict', nothing_left)
    ran('opport', None, 'opport', part_of_the_tree)
    ran('bind', None, 'bind', nothing_left)
    out['scenarios']['bind']['view_mounted'] = os.path.ismount(view)
    unmount_view(view)

    for name, mode in (('fail_strict', 'strict'), ('fail_bind', 'bind')):
        step = {}
        out['scenarios'][name] = step
        images, step['checkpoint'] = checkpoint(name)
        vm.remove_tree()
        step['state_before'] = cgroup_state()
        step['restore'] = restore(images, mode, criu_restore_criu_args=['--action-script', script])
        vm.reap()
        step['processes_left'] = [p for p in tree if vm.alive(p)]
        step['state_after'] = cgroup_state()
        save()
        if step['processes_left']:
            vm.kill_tree(tree)
        # The next scenario checkpoints the tree again: bring it back without the script.
        step['restore_without_fault'] = restore(images, mode)
        step['after_restore_without_fault'] = observe()
        save()
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
    vm.kill_tree(tree)
    remove_below('r')
    vm.remove_tree()
    out['done'] = True
    save()
    vm.log('done')


if __name__ == '__main__':
    main()
