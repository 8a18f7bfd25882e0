#!/usr/bin/env python
"""Benchmark 4: a config of the shape of libcgroup's own large sample
(samples/config/large_cgconfig.conf): a mount block for cpu, cpuacct and
memory, then 2,000 groups under 20 top-level groups, each with a perm block
(task and admin uid and gid) and empty cpu {} and memory {} blocks, generated
here. It is restored from an empty sandbox by

  cgconfigparser   libcgroup's `cgconfigparser -l` on the file
  module           the cgroup_restore module file as Ansible runs it on a
                   target, with src: the file
  module_one       the same module with a spec of one cgroup and nothing
                   else: the floor of any module process (Python, Ansible's
                   module library, the arguments, the result)
  ansible          ansible-playbook against localhost (connection local)

each as a whole process in a fresh sandbox, then its no-op re-run in the
same sandbox. cgconfigparser acts on the mount block, so it runs in a cgroup
namespace rooted at the sandbox (its mounts then show the sandbox, nothing
else) and in a mount namespace of its own each run (a second run of it
would find its mounts there and fail with EBUSY). Prints a table and the
ratios of the goals, writes build/bench/large_cgconfig.json.

    .venv/bin/python bench/large_cgconfig.py [--quick] [--runs N]
"""

import argparse
import json
import os
import random
import string
import sys

import benchlib as bl

TOOLS = ('cgconfigparser', 'module', 'module_one', 'ansible')
CONTROLLERS = ('cpu', 'cpuacct', 'memory')  # of the mount block
GROUP_CONTROLLERS = ('cpu', 'memory')  # of each group
TARGETS = (
    ('module first restore / cgconfigparser', 'module', 'first', 'cgconfigparser', 'first', 0.4),
    ('module no-op re-run / cgconfigparser re-run', 'module', 'rerun', 'cgconfigparser', 'rerun', 0.15),
    ('ansible-playbook first restore / cgconfigparser', 'ansible', 'first', 'cgconfigparser', 'first', 2.0),
    ('ansible-playbook no-op re-run / cgconfigparser re-run', 'ansible', 'rerun', 'cgconfigparser', 'rerun', 1.5),
    ('module with one cgroup, re-run / cgconfigparser re-run (the floor of that ratio)', 'module_one', 'rerun',
     'cgconfigparser', 'rerun', None),
)


def large_cgconfig(mounts, tops, per_top, seed=1):
    """libcgroup's sample, in shape: random names (6 letters for the top-level
    groups, 4 below), every group owned by root through its perm block."""
    rnd = random.Random(seed)

    def name(length):
        return ''.join(rnd.choice(string.ascii_letters) for _letter in range(length))
    out = ['mount {'] + ['\t%s = %s;' % (ctrl, path) for ctrl, path in mounts] + ['}']
    groups = []
    for _top in range(tops):
        top = name(6)
        for _sub in range(per_top):
            groups.append('%s/%s' % (top, name(4)))
            out += ['group %s {' % groups[-1], '\tperm {',
                    '\t\ttask {', '\t\t\tuid = root;', '\t\t\tgid = root;', '\t\t}',
                    '\t\tadmin {', '\t\t\tuid = root;', '\t\t\tgid = root;', '\t\t}',
                    '\t}', '\tcpu {}', '\tmemory {}', '}']
    return '\n'.join(out) + '\n', groups


def hierarchy_of(sandbox, controller):
    for name in sandbox.hierarchies:
        if controller in name.split(','):
            return name
    raise SystemExit('large_cgconfig: this host has no cgroup v1 hierarchy with %s (the benchmark needs v1)'
                     % controller)


def write_inputs(sandbox, tops, per_top):
    work = sandbox.work
    # The mount block names paths in the sandbox's own directory: a
    # comounted pair (cpu,cpuacct) shares one path, as in libcgroup's sample.
    mounts = [(ctrl, os.path.join(work, 'mnt', hierarchy_of(sandbox, ctrl))) for ctrl in CONTROLLERS]
    text, groups = large_cgconfig(mounts, tops, per_top)
    files = {name: os.path.join(work, name) for name in
             ('cgconfig.conf', 'args.json', 'args_one.json', 'play.yml', 'inventory.ini')}
    with open(files['cgconfig.conf'], 'w') as handle:
        handle.write(text)
    with open(files['args.json'], 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': {'src': files['cgconfig.conf'], 'mode': 'strict'}}, handle)
    with open(files['args_one.json'], 'w') as handle:
        one = {'version': 1, 'cgroups': {'one': {'controllers': ['memory']}}}
        json.dump({'ANSIBLE_MODULE_ARGS': {'spec': one, 'mode': 'strict'}}, handle)
    with open(files['play.yml'], 'w') as handle:
        json.dump([{'name': 'Restore the large cgconfig', 'hosts': 'localhost', 'gather_facts': False,
                    'tasks': [{'name': 'Restore', 'checkpoint_restore.cgroups.cgroup_restore': {
                        'src': files['cgconfig.conf'], 'mode': 'strict'}}]}], handle)
    with open(files['inventory.ini'], 'w') as handle:
        handle.write('localhost ansible_connection=local ansible_python_interpreter=%s\n' % sys.executable)
    return files, groups


def commands(tool, sandbox, files):
    if tool == 'cgconfigparser':
        # Inside the sandbox's mount namespace /sys/fs/cgroup/<hierarchy> is
        # the sandbox's cgroup: the shell moves there, then the cgroup
        # namespace makes it the root of every cgroup mount made below.
        moves = ' '.join('/sys/fs/cgroup/%s/cgroup.procs' % h
                         for h in sorted(set(hierarchy_of(sandbox, c) for c in CONTROLLERS)))
        script = ('for procs in %s; do echo $$ > "$procs"; done; '
                  'exec unshare --cgroup --mount --propagation private cgconfigparser -l "$0"' % moves)
        first = ['sh', '-c', script, files['cgconfig.conf']]
    elif tool == 'module':
        first = [sys.executable, os.path.join(bl.REPO, 'plugins', 'modules', 'cgroup_restore.py'), files['args.json']]
    elif tool == 'module_one':
        first = [sys.executable, os.path.join(bl.REPO, 'plugins', 'modules', 'cgroup_restore.py'),
                 files['args_one.json']]
    else:
        first = [os.path.join(bl.VENV_BIN, 'ansible-playbook'), '-i', files['inventory.ini'], files['play.yml']]
    return [first, first]


def verify(sandbox, groups, tool):
    """Every group and its top-level group, in each controller's hierarchy."""
    if tool == 'module_one':
        return
    for ctrl in GROUP_CONTROLLERS:
        hierarchy = hierarchy_of(sandbox, ctrl)
        for group in groups:
            for path in (group.split('/')[0], group):
                if not os.path.isdir(sandbox.path(hierarchy, path)):
                    raise RuntimeError('%s did not create %s:%s' % (tool, hierarchy, path))


def one_run(tool, tops, per_top):
    with bl.Box() as sandbox:
        files, groups = write_inputs(sandbox, tops, per_top)
        env = bl.module_env(ANSIBLE_COLLECTIONS_PATH=bl.COLLECTIONS, ANSIBLE_NOCOLOR='1',
                            ANSIBLE_LOCAL_TEMP=os.path.join(sandbox.work, 'ansible-tmp'),
                            ANSIBLE_REMOTE_TEMP=os.path.join(sandbox.work, 'ansible-tmp'),
                            ANSIBLE_RETRY_FILES_ENABLED='0')
        load = bl.load()
        first, rerun = bl.run_timed(sandbox, commands(tool, sandbox, files), env=env)
        verify(sandbox, groups, tool)
        if tool == 'ansible':
            for result, changed in ((first, 1), (rerun, 0)):
                if 'changed=%d ' % changed not in result['tail'] or 'failed=0' not in result['tail']:
                    raise RuntimeError('ansible-playbook: expected changed=%d: %s' % (changed, result['tail']))
        if tool == 'module':
            if '"changed": true' not in first['tail'] or '"changed": false' not in rerun['tail']:
                raise RuntimeError('module: expected a change, then none: %s' % rerun['tail'])
    return {'first': first['wall'], 'rerun': rerun['wall'], 'first_cpu': first['cpu'], 'rerun_cpu': rerun['cpu'],
            'first_mb': first['maxrss_mb'], 'rerun_mb': rerun['maxrss_mb'], 'load': load}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--quick', action='store_true', help='2 top-level groups x 50, 1 run (CI)')
    parser.add_argument('--runs', type=int, help='runs of each tool (default 5, quick 1)')
    args = parser.parse_args()
    bl.check_root()
    tops, per_top = (2, 50) if args.quick else (20, 100)
    runs = args.runs or (1 if args.quick else 5)
    print('large cgconfig: %d groups under %d top-level groups, perm blocks, cpu {} and memory {}; %d runs'
          % (tops * per_top, tops, runs))
    results = bl.interleaved(TOOLS, runs, lambda tool: one_run(tool, tops, per_top))
    summary = bl.summarize(results)
    targets = [bl.ratio_target(summary, *target) for target in TARGETS]
    bl.print_targets(targets)
    data = {'benchmark': 'large_cgconfig', 'quick': args.quick, 'runs': runs,
            'size': {'groups': tops * per_top, 'top_level': tops, 'directories': (tops * per_top + tops) * len(GROUP_CONTROLLERS)},
            'machine': bl.machine(), 'ansible': bl.ansible_version(), 'median': summary, 'runs_raw': results,
            'targets': targets}
    bl.write_json('large_cgconfig_quick' if args.quick else 'large_cgconfig', data)
    return 0


if __name__ == '__main__':
    sys.exit(main())
