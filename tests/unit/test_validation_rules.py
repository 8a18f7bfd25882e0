"""Parameters as given (no `or default`), and cgconfig files shaped like
libcgroup's samples: pure functions, no kernel."""

import subprocess
import sys

import pytest

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import formats
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import restore
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import SpecError
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.lock import HostLock

SPEC = {'version': 1, 'cgroups': {'ct': {'pids.max': 1}}}


@pytest.mark.parametrize('params,words', [
    ({'mode': ''}, "Invalid mode '': choose exactly one of strict, opport or bind"),
    ({'mode': 'strict,opport'}, 'modes cannot be combined'),
    ({'restore_properties': ''}, "Invalid restore_properties '': choose one of all, created, none"),
    ({'missing_properties': 'ignore'}, "Invalid missing_properties 'ignore'"),
    ({'translate': ''}, "Invalid translate ''"),
    ({'translate_unmappable': 'drop'}, "Invalid translate_unmappable 'drop'"),
    ({'mountpoint': ''}, "Invalid mountpoint '': give the absolute path"),
    ({'mountpoint': 'sys/fs/cgroup'}, 'Invalid mountpoint'),
    ({'lock_timeout': -1}, 'Invalid lock_timeout -1'),
    ({'lock_timeout': True}, 'Invalid lock_timeout True'),
])
def test_parameters_are_taken_as_given_and_refused_by_name(params, words):
    with pytest.raises(SpecError) as exc:
        restore.read_request(dict(params, spec=SPEC))
    assert words in str(exc.value)


def test_left_out_parameters_take_their_defaults_and_zero_stays_zero():
    _spec, options = restore.read_request({'spec': SPEC, 'mode': None, 'restore_properties': None})
    assert (options.mode, options.restore_properties, options.mountpoint) == ('strict', 'all', '/sys/fs/cgroup')
    assert restore.lock_timeout({}) == 60 and restore.lock_timeout({'lock_timeout': None}) == 60
    assert restore.lock_timeout({'lock_timeout': 0}) == 0


HOLDER = ('import fcntl, sys, time\n'
          'fd = open(sys.argv[1], "w")\nfcntl.flock(fd, fcntl.LOCK_EX)\nprint("held", flush=True)\n'
          'sys.stdin.read()\n')


def test_lock_timeout_zero_gives_up_at_the_first_try(tmp_path):
    path = str(tmp_path / 'lock')
    holder = subprocess.Popen([sys.executable, '-c', HOLDER, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              universal_newlines=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        with pytest.raises(Exception) as exc:
            with HostLock(0, path):
                pass
    finally:
        holder.communicate('')  # its stdin closes: it exits, and the lock goes with it
    assert 'lock_timeout 0 says not to wait' in str(exc.value)
    with HostLock(0, path):  # free again
        pass


def test_the_lock_is_reentrant_within_the_process_and_released_by_the_outer_block(tmp_path):
    """cgroup_systemd_unit holds the lock around the engine's run, which
    takes it again: the inner block goes on at once, and only the outer
    block's end lets another process take it."""
    path = str(tmp_path / 'lock')
    probe = [sys.executable, '-c', 'import fcntl, sys\nfd = open(sys.argv[1], "w")\n'
             'try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept OSError:\n    sys.exit(3)\n', path]
    with HostLock(0, path) as outer:
        with HostLock(0, path) as inner:
            assert inner.waited == 0.0 and outer.waited < 1
            assert subprocess.run(probe, check=False).returncode == 3
        assert subprocess.run(probe, check=False).returncode == 3  # still held by the outer block
    assert subprocess.run(probe, check=False).returncode == 0


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


ALL_COMMENTS = '# a header\n#\n#group a/b {\n#\tcpu {\n#\t\tcpu.shares = 5;\n#\t}\n#}\n#mount {\n#\tcpu = /x;\n#}\n'


def test_a_cgconfig_of_comments_only_is_a_cgconfig_that_names_nothing(tmp_path):
    path = write(tmp_path, 'cgconfig.conf', ALL_COMMENTS)
    assert formats.detect(path) == 'cgconfig'
    data, warnings = formats.load_src(path)
    assert data is formats.NOTHING_TO_RESTORE and any('names no group' in w for w in warnings), warnings
    # a mount block (and systemd blocks, as in libcgroup's cgconfig_systemd.conf) and no group
    path = write(tmp_path, 'mount.conf', '# header\nmount {\n\tcpu = /x;\n}\nsystemd {\n\tslice = a.slice;\n}\n')
    assert formats.detect(path) == 'cgconfig'
    data, warnings = formats.load_src(path)
    assert data is formats.NOTHING_TO_RESTORE
    assert [w.split(': ', 1)[1][:30] for w in warnings] == [
        'line 2: the mount block (cpu=/', 'line 5: the systemd block is n', 'it names no group, so there is']
    # still native: YAML with comments, and an empty file (refused by the spec reader, as before)
    yaml_spec = '# mine\nversion: 1\ncgroups: {ct: {pids.max: 1}}\n'
    assert formats.detect(write(tmp_path, 'spec.yml', yaml_spec)) == 'native'
    assert formats.detect(write(tmp_path, 'empty.yml', '# nothing here\n')) == 'native'


def test_read_request_of_a_cgconfig_with_no_group_is_an_empty_spec(tmp_path):
    notes = []
    spec, _options = restore.read_request({'src': write(tmp_path, 'c.conf', ALL_COMMENTS)}, warn=notes.append)
    assert spec.cgroups == () and any('nothing to restore' in n for n in notes), notes


GROUP = ('group %s {\n\tcpu {\n\t\tcpu.shares = %d;\n\t}\n\tcpuacct {\n\t}\n'
         '\tperm {\n\t\ttask {\n\t\t\tuid = 7;\n\t\t}\n\t}\n}\n')


def test_namespaces_put_each_controller_of_a_group_below_its_path(tmp_path):
    text = GROUP % ('www', 100) + GROUP % ('/', 200) + \
        'namespace {\n\tcpu = /daemons;\n\tcpuacct = acct/x;\n}\n'
    data, warnings = formats.load_src(write(tmp_path, 'ns.conf', text))
    cgroups = data['cgroups']
    assert sorted(cgroups) == ['acct/x', 'acct/x/www', 'daemons', 'daemons/www']
    assert cgroups['daemons/www']['controllers'] == ['cpu'] and cgroups['daemons/www']['properties'] == {
        'cpu.shares': '100'}
    assert cgroups['acct/x/www'] == {'controllers': ['cpuacct'], 'file_perms': {'tasks': {'uid': '7'}},
                                     'properties': {}}
    assert cgroups['daemons']['properties'] == {'cpu.shares': '200'}
    assert cgroups['daemons/www']['file_perms'] == {'tasks': {'uid': '7'}}
    assert warnings == []


@pytest.mark.parametrize('tail,words', [
    ('namespace {\n\tcpu = a;\n}\nnamespace {\n\tcpu = b;\n}\n',
     'line 18: controller cpu has two namespaces, a (line 15) and b'),
    ('namespace {\n\tcpu = a;\n}\nmount {\n\tcpu = /x;\n}\n',
     'a mount block (line 17) and a namespace block (line 14)'),
    ('namespace {\n\tcpu = ../a;\n}\n', 'line 15: Invalid namespace of cpu'),
    ('namespace {\n\tcpu { }\n}\n', 'line 15: a block inside the namespace block'),
])
def test_bad_namespaces_are_refused_by_line(tmp_path, tail, words):
    with pytest.raises(SpecError) as exc:
        formats.load_src(write(tmp_path, 'ns.conf', GROUP % ('www', 100) + '\n' + tail))
    assert words in str(exc.value) and 'ns.conf' in str(exc.value), str(exc.value)
