"""cgroup views built the way real tools leave them, on a sandbox's subtrees,
each in a private mount namespace (and, where asked, a cgroup namespace),
and a driver that runs module calls and shell steps inside one of them.

Every script names only the sandbox's own subtrees
(/sys/fs/cgroup/<hierarchy>/<sandbox>), its work directory and mounts made in
the namespace; the host's own cgroups are never written."""

import json
import os
import shlex
import subprocess
import sys
import tempfile

from modrun import module_env, module_path

CGROUP_ROOT = '/sys/fs/cgroup'
# One namespace, several steps: a module call or a shell command. After each,
# the namespace's mountinfo, read by the driver, not by the module.
DRIVER = r'''
import json, subprocess, sys
results = []
for step in json.load(open(sys.argv[1])):
    if 'sh' in step:
        proc = subprocess.run(['sh', '-c', step['sh']], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True)
        result = {'rc': proc.returncode, 'out': proc.stdout}
    else:
        proc = subprocess.run([sys.executable, step['module'], step['args_file']], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True)
        try:
            result = json.loads(proc.stdout)
        except ValueError:
            result = {'failed': True, 'unparsed': proc.stdout + proc.stderr}
        result['_stderr'] = proc.stderr
    with open('/proc/self/mountinfo') as handle:
        result['_mountinfo'] = handle.read()
    results.append(result)
print(json.dumps(results))
'''


def call(module='cgroup_restore', check=False, diff=False, **args):
    return {'module': module, 'args': args, 'check': check, 'diff': diff}


def sh(command):
    return {'sh': command}


def q(path):
    return shlex.quote(path)


def private_lock(sandbox):
    """The sandbox host's own /run/lock, so that tests do not wait for each other."""
    return 'mount --bind %s /run/lock' % q(os.path.join(sandbox.work, 'lock')) if os.path.isdir('/run/lock') else ''


def sandbox_view(sandbox, only=None):
    """Shell: the sandbox's own view (tools/cgroup_sandbox.py), without its
    final exec: binds of the sandbox subtrees on a tmpfs on /sys/fs/cgroup."""
    lines = sandbox.setup_script(only).splitlines()
    assert lines[-1] == 'exec "$@"', lines
    return '\n'.join(lines[:-1])


def moved_view(sandbox, names, stage='stage-moved'):
    """Shell: each hierarchy's sandbox subtree bound onto a staging
    directory, a tmpfs on /sys/fs/cgroup, then each bind moved onto it
    (mount --move, as move_mount(2) and CRIU's mount restore do): every
    bind's line in mountinfo comes before the tmpfs it sits on."""
    base = os.path.join(sandbox.work, stage)
    lines = ['set -e']
    for name in names:
        lines += ['mkdir -p %s' % q(os.path.join(base, name)),
                  'mount --bind %s %s' % (q(sandbox.path(name)), q(os.path.join(base, name)))]
    lines.append('mount -t tmpfs -o mode=755 cgroup-view %s' % CGROUP_ROOT)
    for name in names:
        lines += ['mkdir %s' % q(os.path.join(CGROUP_ROOT, name)),
                  'mount --move %s %s' % (q(os.path.join(base, name)), q(os.path.join(CGROUP_ROOT, name)))]
    return '\n'.join(lines)


def process_cgroups(text):
    """{hierarchy directory name: path} from /proc/self/cgroup text: 'cpu',
    'cpu,cpuacct', 'systemd' for name=systemd, 'unified' for cgroup v2."""
    found = {}
    for line in text.splitlines():
        _hid, controllers, path = line.split(':', 2)
        if not controllers:
            found['unified'] = path
            continue
        names = [c[len('name='):] if c.startswith('name=') else c for c in controllers.split(',')]
        found[','.join(sorted(names))] = path
    return found


def joinable(sandbox):
    """The sandbox's hierarchies in which this process sits in the root
    cgroup: a child can move into the sandbox's subtree there without leaving
    a cgroup that someone else made."""
    with open('/proc/self/cgroup') as handle:
        where = process_cgroups(handle.read())
    return sorted(h for h in sandbox.hierarchies if h and where.get(h) == '/')


def in_cgroup_namespace(sandbox, names, inner):
    """Shell run in the host's mount namespace: move this shell into the
    sandbox's subtree of each hierarchy in names (our own cgroups), then make a
    cgroup namespace (whose root is there) and a private mount namespace, and
    run the script inner in them."""
    lines = ['set -e']
    lines += ['echo $$ > %s' % q(sandbox.path(name, 'cgroup.procs')) for name in names]
    lines.append('exec unshare --cgroup --mount --propagation private -- sh -c %s layout "$@"' % q(inner))
    return '\n'.join(lines)


def run_steps(sandbox, setup, steps, private_mount_namespace=True):
    """Build the view with the shell script setup, then run the steps there.
    private_mount_namespace=False: setup makes its own namespaces (see
    in_cgroup_namespace) and ends with their command."""
    prepared = []
    for step in steps:
        if 'module' in step:
            payload = dict(step['args'], _ansible_check_mode=step['check'], _ansible_diff=step['diff'])
            fd, path = tempfile.mkstemp(prefix='layout-', suffix='.json', dir=sandbox.work)
            with os.fdopen(fd, 'w') as handle:
                json.dump({'ANSIBLE_MODULE_ARGS': payload}, handle)
            step = {'module': module_path(step['module']), 'args_file': path}
        prepared.append(step)
    fd, steps_file = tempfile.mkstemp(prefix='steps-', suffix='.json', dir=sandbox.work)
    with os.fdopen(fd, 'w') as handle:
        json.dump(prepared, handle)
    argv = [sys.executable, '-c', DRIVER, steps_file]
    if private_mount_namespace:
        script = '\n'.join([setup, private_lock(sandbox), 'exec "$@"'])
        command = ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'layout'] + argv
    else:
        command = ['sh', '-c', setup, 'layout'] + argv
    proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          env=module_env(), check=False)
    assert proc.returncode == 0, 'layout run failed: %s %s' % (proc.stdout, proc.stderr)
    results = json.loads(proc.stdout)
    for result in results:
        text = json.dumps(result.get('msg', '')) + result.get('_stderr', '')
        assert 'Traceback' not in text and not result.get('unparsed'), result
    return results
