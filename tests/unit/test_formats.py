"""The foreign spec readers: cgconfig.conf, crit JSON and CRIU images (made
with the real crit), mapped to the native spec and validated by load_spec."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import formats
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
    assert ct['file_perms'] == {'tasks': {'mode': '0664', 'uid': '1000', 'gid': '1001'}}
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


def test_crit_json_cgroup_v2_saved_with_the_empty_controller_name():
    data, _warnings = formats.load_src(fixture('criu', 'v2_unified.json'))
    assert data['cgroups']['ct6']['controllers'] == ['memory', 'pids']
    assert data['cgroups']['ct6']['file_perms']['cgroup.procs']['uid'] == 1000
    assert data['cgroups']['ct6/leaf']['properties'] == {'memory.max': '1048576'}
    assert data['cgroups']['ct6/leaf']['controllers'] == ['memory']


@pytest.mark.parametrize('content,words', [
    ('{"magic": "CGROUP"}', 'no "entries" list'),
    ('{"magic": "CGROUP", "entries": []}', 'cut short'),
    ('{"magic": "PSTREE", "entries": [{}]}', 'CRIU PSTREE image'),
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


def test_criu_image_with_pycriu(tmp_path):
    python = _system_python_with_pycriu()
    assert python, "CRIU's pycriu is missing: scripts/setup installs the criu package"
    image = encode(tmp_path, 'named_nested')
    # no crit on PATH: the image is decoded by pycriu alone
    env = dict(os.environ, PYTHONPATH=COLLECTIONS, PATH='')
    out = subprocess.run([python, '-c', CODE, image], env=env, stdout=subprocess.PIPE, universal_newlines=True,
                         check=True).stdout
    assert json.loads(out) == formats.load_src(fixture('criu', 'named_nested.json'))[0]


def test_without_pycriu_or_crit_the_message_is_clear(tmp_path):
    image = encode(tmp_path, 'named_nested')
    env = dict(os.environ, PYTHONPATH=COLLECTIONS, PATH=str(tmp_path))
    code = CODE.replace('\ntry:', '\nsys.modules["pycriu"] = None\nformats.EXTRA_BIN_DIRS = ()\ntry:')
    out = subprocess.run([sys.executable, '-c', code, image], env=env, stdout=subprocess.PIPE,
                         universal_newlines=True, check=False).stdout
    assert 'neither' in out and 'pycriu' in out and 'crit' in out and image in out, out
