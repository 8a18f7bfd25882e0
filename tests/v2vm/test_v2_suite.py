"""Runs tests/v2 (cgroup_restore on cgroup v2 with every controller) inside
the VM, and proves the v1 <-> v2 equivalence: one v1 spec restored on this
machine's v1 sandbox and in the VM gives the documented equivalent limits."""

import json
import os
import re
import subprocess

from modrun import read, run

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON = os.path.join(REPO, '.venv', 'bin', 'python')


# Under emulation one test takes 20 s, nearly all of it CPU; the VM has two
# vCPUs on two host threads, so two pytest workers halve the time. Tests
# marked `alone` (a cpuset partition takes a CPU for itself) run afterwards.
IN_VM_SUITE = ('set -e; P="$1"; $P -m pytest -p no:cacheprovider --color=no -q -n 2 -m "not alone" tests/v2; '
               '$P -m pytest -p no:cacheprovider --color=no -q -m alone tests/v2')


def test_v2_suite_passes_in_the_vm(v2vm):
    result = v2vm(['sh', '-c', IN_VM_SUITE, 'sh', PYTHON], cwd=REPO, env={'PYTHONDONTWRITEBYTECODE': '1'})
    print('\n'.join(result.output.splitlines()[-25:]))
    assert result.returncode == 0, result.output[-3000:]
    # Every test of tests/v2 must pass in the VM: none skipped, none missing.
    summaries = [line.strip() for line in result.output.splitlines()
                 if re.fullmatch(r'=* *\d+ passed(, \d+ deselected)?(, \d+ warnings?)? in .*', line.strip())]
    assert len(summaries) == 2, result.output[-3000:]
    passed = sum(int(re.search(r'(\d+) passed', line).group(1)) for line in summaries)
    assert passed == collected_v2_tests(), summaries


def collected_v2_tests():
    out = subprocess.run([PYTHON, '-m', 'pytest', '-p', 'no:cacheprovider', '-q', '--collect-only', 'tests/v2'],
                         cwd=REPO, capture_output=True, text=True, check=False).stdout
    count = re.search(r'(\d+) tests? collected', out)
    assert count, out[-2000:]
    return int(count.group(1))


SPEC = {'version': 1, 'cgroups': {'ct': {
    'controllers': ['cpu', 'memory', 'pids'],
    'properties': {'cpu.shares': 2048, 'cpu.cfs_quota_us': 150000, 'cpu.cfs_period_us': 100000,
                   'memory.limit_in_bytes': '300M', 'memory.memsw.limit_in_bytes': '400M', 'pids.max': 99}}}}

IN_VM = r'''
import json, os, sys
sys.path[:0] = ['tests', 'tests/lib', 'tools', 'build/collections']
import cgroup_sandbox, modrun
spec = json.loads(sys.argv[1])
box = cgroup_sandbox.Sandbox(prefix='crtest-').create()
try:
    result = modrun.run(box, spec=spec)
    out = {'failed': bool(result.get('failed')), 'msg': result.get('msg')}
    for name in ('cpu.weight', 'cpu.max', 'memory.max', 'memory.swap.max', 'pids.max'):
        out[name] = modrun.read(box, '', 'ct', name)
finally:
    box.destroy()
with open(os.path.join(os.environ['V2VM_SHARE'], 'v2.json'), 'w') as handle:
    json.dump(out, handle)
'''


def test_same_v1_spec_on_v1_here_and_v2_in_the_vm(sandbox, v2vm):
    result = run(sandbox, spec=SPEC)
    assert not result.get('failed'), result
    v1 = dict((name, read(sandbox, h, 'ct', name)) for h, name in (
        ('cpu', 'cpu.shares'), ('cpu', 'cpu.cfs_quota_us'), ('cpu', 'cpu.cfs_period_us'),
        ('memory', 'memory.limit_in_bytes'), ('memory', 'memory.memsw.limit_in_bytes'), ('pids', 'pids.max')))
    share = os.path.join(sandbox.work, 'share')
    os.mkdir(share)
    vm = v2vm([PYTHON, '-c', IN_VM, json.dumps(SPEC)], cwd=REPO, share=share, env={'PYTHONDONTWRITEBYTECODE': '1'})
    assert vm.returncode == 0, vm.output[-3000:]
    with open(os.path.join(share, 'v2.json')) as handle:
        v2 = json.load(handle)
    assert not v2['failed'], v2
    print('v1 here: %s\nv2 in the VM: %s' % (v1, v2))
    # the documented equivalents (docs/TRANSLATION.md)
    assert int(v2['cpu.weight']) == round(int(v1['cpu.shares']) * 100 / 1024) == 200
    assert v2['cpu.max'] == '%s %s' % (v1['cpu.cfs_quota_us'], v1['cpu.cfs_period_us'])
    assert v2['memory.max'] == v1['memory.limit_in_bytes']
    assert int(v2['memory.swap.max']) == int(v1['memory.memsw.limit_in_bytes']) - int(v1['memory.limit_in_bytes'])
    assert v2['pids.max'] == v1['pids.max']
