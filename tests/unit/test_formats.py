"""The foreign spec readers: cgconfig.conf, crit JSON and CRIU images (made
with the real crit), mapped to the native spec and validated by load_spec."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import formats
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import hierarchies as hz
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import properties
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import snapshot
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import spec as sp
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import SpecError

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'fixtures')
COLLECTIONS = os.path.join(os.path.dirname(FIXTURES), '..', 'build', 'collections')


def fixture(*parts):
    return os.path.join(FIXTURES, *parts)


def encode(tmp_path, name):
    assert shutil.which('crit'), 'crit is missing: scripts/setup installs the criu package'
    image = str(tmp_path / 'cgroup.img')
    subprocess.run(['crit', 'encode', '-i', fixture('criu', name + '.json'), '-o', image], check=True)
    return image


def test_cgconfig_groups_perms_multiline_values_and_mount_warning():
    data, warnings = formats.load_src(fixture('cgconfig', 'handwritten.conf'))
    ct = data['cgroups']['ct101']
    assert ct['controllers'] == ['devices', 'memory', 'name=systemd']
    assert ct['perms'] == {'mode': '0775', 'uid': '1000', 'gid': '1001'}
    # libcgroup: admin owns the group's files (no admin fperm here: modes stay), task owns tasks
    admin = {'uid': '1000', 'gid': '1001'}
    assert ct['file_perms'] == {'tasks': {'mode': '0664', 'uid': '1000', 'gid': '1001'}, 'cgroup.procs': admin,
                                'memory.limit_in_bytes': admin, 'memory.oom_control': admin, 'devices.list': admin}
    assert any('group(s) ct101:' in w and 'other files keep' in w for w in warnings), warnings
    assert ct['properties'] == {'memory.limit_in_bytes': '512M', 'memory.oom_control': 1,
                                'devices.list': ['c 1:3 rwm', 'c 1:5 rwm']}
    assert data['cgroups']['ct101/worker'] == {'controllers': ['pids'], 'properties': {'pids.max': '50'}}
    assert any('mount block' in w and 'memory=/sys/fs/cgroup/memory' in w for w in warnings), warnings
    assert any('memory.stat' in w for w in warnings), warnings
    spec = sp.load_spec(data)
    assert [c.path for c in spec.cgroups] == [('ct101',), ('ct101', 'worker')]


@pytest.mark.parametrize('text,words', [
    ('group ct {\n pids {\n  pids.max = 5;\n }\n', 'unbalanced brace, the block opened at line 1'),
    ('group ct { pids { pids.max = 5; } }\n}\n', 'line 2: unbalanced brace'),
    ('group ct { pids { pids.max = "5; } }\n', 'quote is not closed'),
    ('group ct { pids { pids.max 5; } }\n', 'expected "name = value;"'),
    ('group ../x { pids { } }\n', 'relative reference'),
])
def test_cgconfig_errors_name_the_file_and_line(tmp_path, text, words):
    path = tmp_path / 'cgconfig.conf'
    path.write_text(text)
    with pytest.raises(SpecError) as exc:
        formats.load_src(str(path), 'cgconfig')
    assert words in str(exc.value) and str(path) in str(exc.value)


def test_crit_json_mapping_special_values_and_perms():
    data, warnings = formats.load_src(fixture('criu', 'devices_memory.json'))
    ct = data['cgroups']['ct5']
    assert ct['controllers'] == ['devices', 'memory']
    assert ct['properties']['memory.memsw.limit_in_bytes'] == '-1'
    assert ct['properties']['memory.oom_control'] == '1'
    assert ct['properties']['devices.list'] == ['c 1:3 rwm', 'c 1:5 rwm', 'c 136:* rwm', 'b 8:0 r']
    assert ct['perms'] == {'mode': '0755', 'uid': 0, 'gid': 0}
    assert ct['file_perms']['devices.list'] == {'mode': '0444', 'uid': 0, 'gid': 0}
    assert warnings == []
    loaded = sp.load_spec(data).cgroups[0]
    assert dict((p.name, p.value) for p in loaded.properties)['memory.memsw.limit_in_bytes'] == 'max'


def test_crit_json_procs_and_tasks_carry_perms_only_and_sets_name_members():
    data, _warnings = formats.load_src(fixture('criu', 'owners.json'))
    ct = data['cgroups']['ct4']
    assert 'tasks' not in ct['properties'] and 'cgroup.procs' not in ct['properties']
    assert ct['file_perms']['tasks'] == {'mode': '0664', 'uid': 1000, 'gid': 1000}
    assert ct['perms'] == {'mode': '0777', 'uid': 1000, 'gid': 1000}
    sp.load_spec(data)
    named, _warnings = formats.load_src(fixture('criu', 'named_nested.json'))
    assert named['cgroups']['ct1/sub']['controllers'] == ['name=systemd', 'pids']


def test_criu_owners_that_differ_between_hierarchies_are_kept_per_hierarchy():
    # pids delegated to the container's root, memory not: before, the spec
    # kept the first hierarchy's owner for both, with a warning
    data, warnings = formats.load_src(fixture('criu', 'per_hierarchy_owners.json'))
    ct = data['cgroups']['ct8']
    assert ct['perms'] == {'memory': {'mode': '0755', 'uid': 0, 'gid': 0},
                           'pids': {'mode': '0775', 'uid': 100000, 'gid': 100000}}
    assert ct['file_perms']['tasks'] == {'memory': {'mode': '0644', 'uid': 0, 'gid': 0},
                                         'pids': {'mode': '0664', 'uid': 100000, 'gid': 100000}}
    # the same in every hierarchy: the plain form
    assert ct['file_perms']['pids.max'] == {'mode': '0644', 'uid': 0, 'gid': 0}
    assert data['cgroups']['ct8/inner']['perms'] == {'mode': '0755', 'uid': 0, 'gid': 0}
    assert warnings == []
    loaded = sp.load_spec(data).cgroups
    assert [c.perms.__class__.__name__ for c in loaded] == ['PerHierarchy', 'Perms']


def test_crit_json_cgroup_v2_saved_with_the_empty_controller_name():
    data, _warnings = formats.load_src(fixture('criu', 'v2_unified.json'))
    # "" is the v2 hierarchy: the spec's 'unified', with the controllers of the files
    assert data['cgroups']['ct6']['controllers'] == ['memory', 'pids', 'unified']
    assert data['cgroups']['ct6']['file_perms']['cgroup.procs']['uid'] == 1000
    assert data['cgroups']['ct6/leaf']['properties'] == {'memory.max': '1048576'}
    assert data['cgroups']['ct6/leaf']['controllers'] == ['memory', 'unified']


def test_criu_v2_cgroups_with_only_core_files_belong_to_the_v2_hierarchy():
    data, warnings = formats.load_src(fixture('criu', 'v2_core.json'))
    cgroups = data['cgroups']
    # before: refused, "cannot tell which hierarchies it belongs to"
    assert cgroups['ct7/core']['controllers'] == ['unified']
    assert cgroups['ct7/core']['properties'] == {'cgroup.subtree_control': '', 'cgroup.max.depth': '1',
                                                 'cgroup.max.descendants': '4', 'cgroup.freeze': '0'}
    assert cgroups['ct7/core']['file_perms']['cgroup.procs'] == {'mode': '0664', 'uid': 1000, 'gid': 1000}
    # cgroup.type: only "threaded" is a setting; "domain" and "domain threaded" follow from the tree
    assert 'cgroup.type' not in cgroups['ct7']['properties'] and 'cgroup.type' not in cgroups['ct8']['properties']
    assert cgroups['ct8/t']['properties'] == {'cgroup.type': 'threaded'}
    assert cgroups['ct8/t']['controllers'] == ['unified']
    assert cgroups['ct7']['controllers'] == ['memory', 'pids', 'unified']
    assert warnings == []
    loaded = sp.load_spec(data)
    assert dict((c.path, c.controllers) for c in loaded.cgroups)[('ct7', 'core')] == ('unified',)


def test_criu_set_member_of_the_v2_hierarchy_is_unified(tmp_path):
    image = {'magic': 'CGROUP', 'entries': [{'controllers': [], 'sets': [
        {'id': 1, 'ctls': [{'name': '', 'path': '/ct9/app'}, {'name': 'cpu,cpuacct', 'path': '/ct9'}]}]}]}
    path = tmp_path / 'img.json'
    path.write_text(json.dumps(image))
    data, _warnings = formats.load_src(str(path))
    assert data['cgroups']['ct9/app']['controllers'] == ['unified']
    assert data['cgroups']['ct9']['controllers'] == ['cpu', 'cpuacct']


@pytest.mark.parametrize('content,words', [
    ('{"magic": "CGROUP"}', 'no "entries" list'),
    ('{"magic": "CGROUP", "entries": []}', 'cut short'),
    ('{"magic": "PSTREE", "entries": [{}]}', 'CRIU PSTREE image'),
    ('{"magic": "CGROUP", "entries": [{"controllers": []}, {"controllers": []}]}', 'holds 2 entries'),
    ('{"magic": "CGROUP", "entries": [{"controllers": [{"cnames": ["pids"], "dirs": [{"dir_name": "a/../b"}]}]}]}',
     'relative reference'),
])
def test_crit_json_errors(tmp_path, content, words):
    path = tmp_path / 'img.json'
    path.write_text(content)
    with pytest.raises(SpecError) as exc:
        formats.load_src(str(path), 'crit_json')
    assert words in str(exc.value) and str(path) in str(exc.value)


def test_criu_image_with_crit_and_auto_detection(tmp_path):
    image = encode(tmp_path, 'devices_memory')
    assert formats.detect(image) == 'criu' and formats.detect(str(tmp_path)) == 'criu'
    assert formats.detect(fixture('criu', 'owners.json')) == 'crit_json'
    assert formats.detect(fixture('cgconfig', 'handwritten.conf')) == 'cgconfig'
    from_image, _w = formats.load_src(str(tmp_path))
    from_json, _w = formats.load_src(fixture('criu', 'devices_memory.json'))
    assert from_image == from_json
    with open(image, 'rb') as handle:
        data = handle.read()
    cut = tmp_path / 'cut' / 'cgroup.img'
    cut.parent.mkdir()
    cut.write_bytes(data[:len(data) - 7])
    with pytest.raises(SpecError) as exc:
        formats.load_src(str(cut.parent))
    assert str(cut) in str(exc.value) and 'cut short' in str(exc.value)
    with pytest.raises(SpecError) as exc:
        formats.load_src(FIXTURES, 'criu')
    assert 'no cgroup.img' in str(exc.value)


def test_every_cut_of_a_real_image_is_refused_with_the_file_and_the_reason(tmp_path):
    image = encode(tmp_path, 'devices_memory')
    with open(image, 'rb') as handle:
        data = handle.read()
    assert len(data) == 380
    cut = tmp_path / 'cut' / 'cgroup.img'
    cut.parent.mkdir()
    silent = []
    for length in range(len(data)):
        cut.write_bytes(data[:length])
        try:
            formats.load_src(str(cut.parent))
        except SpecError as exc:
            message = str(exc)
            assert str(cut) in message and '(%d bytes)' % length in message, message
            assert 'cut short' in message or 'empty' in message, message
            assert 'Traceback' not in message
        else:
            silent.append(length)
    assert silent == [], 'cuts decoded without an error: %s' % silent
    # the cuts the audit found: pycriu and crit both decode them, losing the memory controller
    cut.write_bytes(data[:145])
    with pytest.raises(SpecError) as exc:
        formats.load_src(str(cut), 'criu')
    assert 'entry 1 at byte 8 announces 368 bytes, but only 133 follow' in str(exc.value)


@pytest.mark.parametrize('extra,words', [
    (b'\x00', 'the last 1 byte(s), from byte 380, are too few'),
    (b'\x00\x00\x00', 'the last 3 byte(s)'),
    (b'\x00\x00\x00\x00', 'holds 2 entries'),
    (b'\x05\x00\x00\x00ab', 'entry 2 at byte 380 announces 5 bytes, but only 2 follow'),
])
def test_bytes_after_the_entry_are_refused(tmp_path, extra, words):
    image = encode(tmp_path, 'devices_memory')
    with open(image, 'ab') as handle:
        handle.write(extra)
    with pytest.raises(SpecError) as exc:
        formats.load_src(image, 'criu')
    assert words in str(exc.value) and image in str(exc.value)


def test_an_image_of_another_kind_is_refused_by_its_magic(tmp_path):
    image = encode(tmp_path, 'devices_memory')
    with open(image, 'rb') as handle:
        data = bytearray(handle.read())
    data[4:8] = b'\x01\x02\x03\x04'
    with open(image, 'wb') as handle:
        handle.write(bytes(data))
    with pytest.raises(SpecError) as exc:
        formats.load_src(image, 'criu')
    assert 'magic 0x04030201 is not that of cgroup.img' in str(exc.value) and image in str(exc.value)


def _system_python_with_pycriu():
    for python in ('/usr/bin/python3',):
        if os.path.exists(python) and subprocess.run([python, '-c', 'import pycriu'], check=False,
                                                     stderr=subprocess.DEVNULL).returncode == 0:
            return python
    return None


CODE = '''
import json, sys
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import formats
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import SpecError
try:
    print(json.dumps(formats.load_src(sys.argv[1])[0]))
except SpecError as exc:
    print(exc)
'''
# crit cannot be found, on PATH nor in the folders the reader adds to it
NO_CRIT = '\nformats.EXTRA_BIN_DIRS = ()\nassert formats._which("crit") is None\ntry:'


def test_criu_image_with_pycriu(tmp_path):
    python = _system_python_with_pycriu()
    assert python, "CRIU's pycriu is missing: scripts/setup installs the criu package"
    image = encode(tmp_path, 'named_nested')
    # no crit anywhere the reader looks: the image can only have been decoded by pycriu
    env = dict(os.environ, PYTHONPATH=COLLECTIONS, PATH='')
    out = subprocess.run([python, '-c', CODE.replace('\ntry:', NO_CRIT), image], env=env, stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout
    assert json.loads(out) == formats.load_src(fixture('criu', 'named_nested.json'))[0]
    # the same seam without pycriu gives the message that neither decoder is there
    blocked = CODE.replace('\ntry:', '\nsys.modules["pycriu"] = None' + NO_CRIT)
    out = subprocess.run([python, '-c', blocked, image], env=env, stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout
    assert 'neither' in out and image in out, out


def test_without_pycriu_or_crit_the_message_is_clear(tmp_path):
    image = encode(tmp_path, 'named_nested')
    env = dict(os.environ, PYTHONPATH=COLLECTIONS, PATH=str(tmp_path))
    code = CODE.replace('\ntry:', '\nsys.modules["pycriu"] = None\nformats.EXTRA_BIN_DIRS = ()\ntry:')
    out = subprocess.run([sys.executable, '-c', code, image], env=env, stdout=subprocess.PIPE,
                         universal_newlines=True, check=False).stdout
    assert 'neither' in out and 'pycriu' in out and 'crit' in out and image in out, out


PERMS_CONF = '''
group ct {
    perm {
        task { tuid = 1000; tgid = 1001; fperm = 0777; }
        admin { uid = 1002; gid = 1003; dperm = 0750; fperm = 0775; }
    }
    memory { memory.limit_in_bytes = 64M; }
    devices { devices.deny = a; devices.allow = "c 1:3 rwm"; }
}
group ct/only_admin {
    perm { admin { uid = 2000; fperm = 0600; } }
    pids { pids.max = 5; }
}
group ct/odd {
    perm {
        task { uid = 7; owner = 9; }
        other { uid = 1; }
    }
    pids { pids.max = 6; }
}
'''


def test_cgconfig_perms_follow_libcgroup(tmp_path):
    path = tmp_path / 'cgconfig.conf'
    path.write_text(PERMS_CONF)
    data, warnings = formats.load_src(str(path))
    ct = data['cgroups']['ct']
    assert ct['perms'] == {'mode': '0750', 'uid': '1002', 'gid': '1003'}
    admin = {'uid': '1002', 'gid': '1003'}
    # fperm is masked by the owner's bits of the kernel's mode: 0775 on a 0644 file is 0664,
    # on the read-only devices.list 0444; admin's fperm is not the tasks file's
    assert ct['file_perms'] == {'memory.limit_in_bytes': dict(admin, mode='0664'),
                                'devices.list': dict(admin, mode='0444'),
                                'cgroup.procs': dict(admin, mode='0664'),
                                # cgsnapshot of libcgroup 3.x writes the task owner as tuid and tgid
                                'tasks': {'uid': '1000', 'gid': '1001', 'mode': '0666'}}
    only_admin = data['cgroups']['ct/only_admin']
    assert only_admin['perms'] == {'uid': '2000'}
    # without a task owner, admin's owns tasks too (libcgroup chowns every file to admin first)
    assert only_admin['file_perms'] == {'pids.max': {'uid': '2000', 'mode': '0600'},
                                        'cgroup.procs': {'uid': '2000', 'mode': '0600'}, 'tasks': {'uid': '2000'}}
    odd = data['cgroups']['ct/odd']
    assert odd['file_perms'] == {'tasks': {'uid': '7'}} and 'perms' not in odd
    # what libcgroup would not use is reported, never dropped silently
    assert any("line 16: group ct/odd: 'owner' in the task perm block is not one of uid, gid, fperm; ignored" in w
               for w in warnings), warnings
    assert any("line 17: group ct/odd: 'other' in a perm block is neither task nor admin; ignored" in w
               for w in warnings), warnings
    assert any('group(s) ct, ct/only_admin:' in w and "keep the kernel's owner" in w for w in warnings), warnings
    spec = sp.load_spec(data, resolve=lambda field, name: None)
    assert [c.path for c in spec.cgroups] == [('ct',), ('ct', 'odd'), ('ct', 'only_admin')]


@pytest.mark.parametrize('perm,words', [
    ('admin { fperm = 0999; }', 'line 2: group ct: admin fperm = \'0999\' is not an octal mode'),
    ('task { fperm = rw; }', 'line 2: group ct: task fperm = \'rw\' is not an octal mode'),
    ('admin { dperm = 17777; }', 'admin dperm = \'17777\' is not an octal mode'),
])
def test_cgconfig_bad_modes_name_the_file_line_and_group(tmp_path, perm, words):
    path = tmp_path / 'cgconfig.conf'
    path.write_text('group ct {\n perm { %s }\n pids { pids.max = 5; }\n}\n' % perm)
    with pytest.raises(SpecError) as exc:
        formats.load_src(str(path))
    assert words in str(exc.value) and str(path) in str(exc.value)


def test_builtin_lists_are_criu_s():
    # criu/cgroup-props.c: the built-in properties per controller and the global ones
    assert properties.CRIU_BUILTIN == {
        'cpu': ('cpu.shares', 'cpu.cfs_period_us', 'cpu.cfs_quota_us', 'cpu.rt_period_us', 'cpu.rt_runtime_us'),
        'memory': ('memory.limit_in_bytes', 'memory.memsw.limit_in_bytes', 'memory.swappiness',
                   'memory.soft_limit_in_bytes', 'memory.move_charge_at_immigrate', 'memory.oom_control',
                   'memory.use_hierarchy', 'memory.kmem.limit_in_bytes', 'memory.kmem.tcp.limit_in_bytes'),
        'cpuset': ('cpuset.cpus', 'cpuset.mems', 'cpuset.memory_migrate', 'cpuset.cpu_exclusive',
                   'cpuset.mem_exclusive', 'cpuset.mem_hardwall', 'cpuset.memory_spread_page',
                   'cpuset.memory_spread_slab', 'cpuset.sched_load_balance', 'cpuset.sched_relax_domain_level'),
        'blkio': ('blkio.weight',), 'freezer': (), 'perf_event': (), 'net_cls': ('net_cls.classid',),
        'net_prio': ('net_prio.ifpriomap',), 'pids': ('pids.max',), 'devices': ('devices.list',)}
    assert properties.CRIU_GLOBAL == ('cgroup.clone_children', 'notify_on_release', 'cgroup.procs', 'tasks')
    # CRIU's cgroup v2 global properties (checkpoint-restore/criu#1968), plus the task files for their perms
    assert properties.V2_GLOBAL == ('cgroup.subtree_control', 'cgroup.max.descendants', 'cgroup.max.depth',
                                    'cgroup.freeze', 'cgroup.type', 'cgroup.procs', 'cgroup.threads')
    assert properties.V2_BUILTIN == {
        'cpu': ('cpu.weight', 'cpu.max', 'cpu.idle'),
        'memory': ('memory.min', 'memory.low', 'memory.high', 'memory.max', 'memory.swap.max', 'memory.oom.group'),
        'cpuset': ('cpuset.cpus', 'cpuset.mems', 'cpuset.cpus.partition'),
        'io': ('io.weight', 'io.max'), 'pids': ('pids.max',), 'rdma': ('rdma.max',), 'misc': ('misc.max',)}
    v2 = hz.Hierarchy(name='', mount_point='/sys/fs/cgroup', version=2, controllers=frozenset(['cpu', 'memory']),
                      dev=None, root='/', read_only=False)
    wanted = [n for n in ('cgroup.freeze', 'cgroup.type', 'cgroup.max.depth', 'cgroup.subtree_control', 'memory.max',
                          'cgroup.kill', 'cgroup.events', 'cgroup.stat', 'memory.stat', 'cgroup.procs', 'cpu.shares')
              if snapshot._wanted(n, v2, 'builtin')]  # pylint: disable=protected-access
    assert wanted == ['cgroup.freeze', 'cgroup.type', 'cgroup.max.depth', 'cgroup.subtree_control', 'memory.max']


def test_real_v1_dump_names_the_empty_v2_root_and_it_is_not_restored(tmp_path):
    # v1_real_dump.json: `crit decode` of the cgroup.img that the real `criu
    # dump --manage-cgroups=full` (CRIU 3.17) wrote in the VM's v1 layout
    # (tools/v2vm.py --cgroup v1), of a process in memory:/x. Its last
    # controller is the v2 root, from the "0::/" line: cnames [""], dir_name "",
    # only cgroup.procs (for its perms). Before: "/" got 'unified', and the
    # restore on a v1 host without cgroup2 was refused.
    image = encode(tmp_path, 'v1_real_dump')
    raw = json.loads(subprocess.run(['crit', 'decode', '-i', image], stdout=subprocess.PIPE, check=True).stdout)
    v2_entries = [c for c in raw['entries'][0]['controllers'] if c['cnames'] == ['']]
    assert [d['dir_name'] for d in v2_entries[0]['dirs']] == ['']
    data, warnings = formats.load_src(str(tmp_path))
    assert all('unified' not in cg['controllers'] for cg in data['cgroups'].values()), data
    assert data['cgroups']['x']['controllers'] == ['memory']
    assert data['cgroups']['x']['properties']['memory.limit_in_bytes'] == '99999744'
    assert 'unified' not in data['cgroups']['/']['controllers']
    assert warnings == []
    sp.load_spec(data)


@pytest.mark.parametrize('v2_dir', [
    {'dir_name': '', 'properties': [{'name': 'pids.max', 'value': '5'}]},
    {'dir_name': '', 'children': [{'dir_name': 'app', 'properties': []}]},
    {'dir_name': 'ct', 'properties': [{'name': 'cgroup.procs', 'value': ''}]},
])
def test_a_v2_entry_with_something_to_restore_is_kept(tmp_path, v2_dir):
    image = {'magic': 'CGROUP', 'entries': [{'controllers': [{'cnames': [''], 'dirs': [v2_dir]}], 'sets': []}]}
    path = tmp_path / 'img.json'
    path.write_text(json.dumps(image))
    data, _warnings = formats.load_src(str(path))
    assert any('unified' in cg['controllers'] for cg in data['cgroups'].values()), data


def test_cgconfig_tokens_line_by_line_and_across_lines_agree():
    """The line-by-line scan and the scan across lines give the same tokens
    and lines; a string over two lines starts on its first line."""
    plain = 'group ct { # a comment "with a quote\n  pids { pids.max = ""; x = "5"; }\n}\n'
    assert formats._tokens(plain, 'f') == formats._tokens_across_lines(plain, 'f')
    assert ('str', '', 2) in formats._tokens(plain, 'f') and ('str', '5', 2) in formats._tokens(plain, 'f')
    across = 'group ct {\n devices { devices.allow = "a\n b"; }\n pids { pids.max = 5; }\n}\n'
    tokens = formats._tokens(across, 'f')
    assert ('str', 'a\n b', 2) in tokens and ('word', 'pids.max', 4) in tokens
