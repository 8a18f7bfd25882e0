"""Checkpoint and restore with the real CRIU (Debian's criu 3.17) in the VM,
on cgroup v1 and on cgroup v2: one VM per layout runs tests/v2vm/criu_in_vm.py,
which does every step and writes what it saw; the tests here assert on it.

CRIU cannot run on this machine's own kernel (`criu check` fails there), so
every CRIU step is in the VM (tools/v2vm.py --criu, --cgroup v1 or v2).

The table of what CRIU alone restores against what the collection restores
(docs/CRIU.md) is printed at the end of the session from this run."""

import json
import os
import subprocess

import pytest

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import formats

import criu_table

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON = os.path.join(REPO, '.venv', 'bin', 'python')
SCRIPT = os.path.join(REPO, 'tests', 'v2vm', 'criu_in_vm.py')

V1_MOUNTS = {'cpu,cpuacct', 'memory', 'pids', 'devices', 'freezer', 'cpuset', 'blkio', 'net_cls,net_prio'}
# Under emulation one run takes 2.5 minutes on an idle 2-core machine, 8 at a load of 15;
# the boot alone took 72 s at a load of 20.
RUN_TIMEOUT = 900
BOOT_TIMEOUT = 300


@pytest.fixture(scope='module', params=['v1', 'v2'])
def run(request, v2vm, tmp_path_factory):
    kind = request.param
    share = tmp_path_factory.mktemp('criu-' + kind)
    out = share / 'out.json'
    result = v2vm([PYTHON, SCRIPT, str(out)], share=str(share), cwd=REPO, cgroup=kind, criu=True,
                  timeout=RUN_TIMEOUT, boot_timeout=BOOT_TIMEOUT, env={'PYTHONDONTWRITEBYTECODE': '1'})
    found = json.loads(out.read_text()) if out.exists() else {}
    found['_output'] = result.output
    found['_share'] = str(share)
    assert result.returncode == 0 and found.get('done'), result.output[-4000:]
    criu_table.record(kind, found)
    return found


def test_the_vm_has_the_cgroup_layout_asked_for(run):
    mounts = dict(run['mounts'])
    if run['layout'] == 'v2':
        assert mounts == {'/sys/fs/cgroup': 'cgroup2'}
        return
    assert set(mounts.values()) == {'cgroup'}, mounts
    assert {os.path.relpath(p, '/sys/fs/cgroup') for p in mounts} == V1_MOUNTS
    # cgroup2 was mounted once and unmounted, as on a real v1 host: the 0::/ line.
    assert '0::/' in run['self_cgroup']


def test_criu_check_passes(run):
    assert run['criu_check']['rc'] == 0, run['criu_check']['output']
    assert 'Looks good.' in run['criu_check']['output']


def test_snapshot_dump_and_both_restores_succeed(run):
    assert not run['snapshot'].get('failed'), run['snapshot']
    assert set(run['snapshot']['spec']['cgroups']) == {'ct', 'ct/app', 'ct/db'}
    for step in (run['dump'], run['criu_alone']['restore'], run['collection']['criu']):
        assert step['rc'] == 0, step


def test_the_original_tree_is_what_the_test_built(run):
    assert sorted(run['tree'].values()) == ['ct/app', 'ct/app', 'ct/db']
    assert run['original']['cgroup'] == run['expected_cgroup']
    for level, limits in run['original']['limits'].items():
        assert all(value not in ('no cgroup', 'no file') for value in limits.values()), (level, limits)


def test_with_the_collection_every_process_is_back_in_its_own_cgroup(run):
    assert run['collection']['cgroup'] == run['expected_cgroup']


def test_with_the_collection_every_limit_on_every_level_equals_the_original(run):
    assert run['collection']['restore'].get('changed') is True, run['collection']['restore']
    assert not run['collection']['restore'].get('failed'), run['collection']['restore']
    assert run['collection']['before_criu'] == run['original']['limits']
    # CRIU's soft mode wrote nothing into the tree we built.
    assert run['collection']['limits'] == run['original']['limits']


def test_a_second_restore_changes_nothing(run):
    again = run['collection']['again']
    assert again.get('changed') is False and not again.get('failed'), again


def test_criu_alone_loses_the_limits_documented(run):
    """What CRIU alone gives back (docs/CRIU.md's table): on v1, the limits of
    the cgroups that have tasks but not of their parent ct; on v2 none at all,
    and the children lack the controllers' files."""
    lost = criu_table.lost(run['original']['limits'], run['criu_alone']['limits'])
    if run['layout'] == 'v1':
        assert lost == {('ct', name) for name in run['original']['limits']['ct']}, lost
    else:
        assert lost == {(level, name) for level, limits in run['original']['limits'].items() for name in limits}, lost
        assert set(run['criu_alone']['limits']['ct/app'].values()) == {'no file'}
    # CRIU alone still puts every process back into its cgroup.
    assert run['criu_alone']['cgroup'] == run['expected_cgroup']


def test_cgroup_restore_from_criu_s_own_image(run):
    """cgroup_restore of the real cgroup.img (no snapshot) succeeds on both
    layouts, v1 without any cgroup2 mount, and gives back what the image
    holds: what CRIU alone gives back."""
    result = run['from_image']['result']
    assert not result.get('failed'), result
    assert run['from_image']['limits'] == run['criu_alone']['limits']


def test_what_criu_s_real_image_holds(run):
    """On v1, the image also names the v2 root (from the 0::/ line): controller
    "", dir "", only cgroup.procs; the reader drops it, so no cgroup of the
    spec is in the unified hierarchy (issue 13 item 5). On v2 it names only
    the cgroups with tasks, with cgroup.procs and no limit at all."""
    image = os.path.join(run['_share'], 'cgroup-%s.img' % run['layout'])
    decoded = json.loads(subprocess.run(['crit', 'decode', '-i', image], stdout=subprocess.PIPE,
                                        check=True).stdout)
    v2 = [c for c in decoded['entries'][0]['controllers'] if c['cnames'] == ['']]
    assert len(v2) == 1, decoded
    dirs = {d['dir_name']: [p['name'] for p in d.get('properties') or []] for d in v2[0]['dirs']}
    data, _warnings = formats.load_src(image)
    in_v2 = sorted(path for path, cg in data['cgroups'].items() if 'unified' in cg['controllers'])
    if run['layout'] == 'v1':
        assert dirs == {'': ['cgroup.procs']}, dirs
        assert in_v2 == []
    else:
        assert dirs == {'ct/app': ['cgroup.procs'], 'ct/db': ['cgroup.procs']}, dirs
        assert in_v2 == ['ct/app', 'ct/db']
