"""cgconfig.conf inputs shaped like the sample configs libcgroup ships
(samples/config): only comments and a mount block, a namespace block, perm
blocks that name a group the host does not have, and 2,000 groups with perm
blocks. The files are written here, in the samples' shapes; each is given as
src with format auto, and the kernel's files are read back on the host."""

import os

from modrun import cgroups, read, run, snapshot

HEADER = '''#
#  A cgconfig.conf written for this test, in the layout of libcgroup's samples.
#
'''

# libcgroup's own samples/config/cgconfig.conf: every block commented out
ALL_COMMENTS = HEADER + '''#group web/static {
#\tperm {
#\t\ttask {
#\t\t\tuid = root;
#\t\t\tgid = root;
#\t\t}
#\t}
#\tcpu {
#\t\tcpu.shares = 700;
#\t}
#}
#
#mount {
#\tcpu = /sys/fs/cgroup/cpu;
#}
'''

COMMENTS_AND_MOUNT = HEADER + '''#group web/static {
#\tcpu {
#\t\tcpu.shares = 700;
#\t}
#}

mount {
\tcpu = /sys/fs/cgroup/cpu;
\tcpuacct = /sys/fs/cgroup/cpuacct;
}
'''


def namespace_conf(prefix):
    body = HEADER
    for name, shares in (('web', 900), ('mail', 300)):
        body += '''group %s {
\tperm {
\t\ttask {
\t\t\tuid = root;
\t\t\tgid = root;
\t\t}
\t\tadmin {
\t\t\tuid = root;
\t\t\tgid = root;
\t\t}
\t}
\tcpu {
\t\tcpu.shares = %d;
\t}
\tcpuacct {
\t}
}

''' % (name, shares)
    return body + 'namespace {\n\tcpu = %s;\n\tcpuacct = %s;\n}\n' % (prefix, prefix)


UNKNOWN_GROUP = HEADER + '''group web {
\tperm {
\t\ttask {
\t\t\tuid = root;
\t\t\tgid = crtest-no-such-group;
\t\t}
\t\tadmin {
\t\t\tuid = root;
\t\t\tgid = root;
\t\t}
\t}
\tcpu {
\t\tcpu.shares = 900;
\t}
}
'''


def many_groups(count, parents):
    """A mount block, then `count` groups below `parents` parent names, each
    with task and admin perm blocks and empty cpu and memory sections."""
    lines = ['mount {', '\tcpu = /cgroup/cpu;', '\tmemory = /cgroup/memory;', '}']
    for i in range(count):
        lines.extend(['group p%02d/g%04d {' % (i % parents, i), '\tperm {',
                      '\t\ttask {', '\t\t\tuid = root;', '\t\t\tgid = root;', '\t\t}',
                      '\t\tadmin {', '\t\t\tuid = root;', '\t\t\tgid = root;', '\t\t}',
                      '\t}', '\tcpu {}', '\tmemory {}', '}'])
    return '\n'.join(lines) + '\n'


def message(warning):
    """The text of a warning in a module result (ansible-core 2.19+ gives a summary mapping)."""
    return warning['event']['msg'] if isinstance(warning, dict) else warning


def write(sandbox, name, text):
    path = os.path.join(sandbox.work, name)
    with open(path, 'w') as handle:
        handle.write(text)
    return path


def test_a_cgconfig_with_no_group_restores_nothing_and_says_so(sandbox):
    before = snapshot(sandbox)
    for name, text, has_mount in (('all-comments.conf', ALL_COMMENTS, False),
                                  ('comments-and-mount.conf', COMMENTS_AND_MOUNT, True)):
        result = run(sandbox, src=write(sandbox, name, text))
        # before: read as a native spec, "Invalid spec: expected a mapping with "version" and "cgroups""
        assert not result.get('failed') and result['changed'] is False, result
        assert any('names no group' in str(w) and 'nothing to restore' in str(w)
                   for w in result.get('warnings', [])), result
        assert any('mount block' in str(w) for w in result['warnings']) == has_mount, result
        assert result['created'] == [] and result['writes'] == [], result
    assert snapshot(sandbox) == before


def test_a_namespace_block_places_the_groups_below_its_path(sandbox):
    conf = write(sandbox, 'namespace.conf', namespace_conf('crtest-daemons'))
    result = run(sandbox, src=conf)
    assert result['changed'] and not result.get('failed'), result
    # before: the namespace block was ignored, and the groups were created at the hierarchy root
    assert not os.path.exists(sandbox.path('cpu', 'web')) and not os.path.exists(sandbox.path('cpuacct', 'web'))
    assert read(sandbox, 'cpu', 'crtest-daemons', 'web', 'cpu.shares') == '900'
    assert read(sandbox, 'cpu', 'crtest-daemons', 'mail', 'cpu.shares') == '300'
    assert cgroups(sandbox, 'cpuacct') == ['crtest-daemons', 'crtest-daemons/mail', 'crtest-daemons/web']
    assert cgroups(sandbox, 'cpu') == ['crtest-daemons', 'crtest-daemons/mail', 'crtest-daemons/web']
    assert not any('not supported' in str(w) for w in result.get('warnings', [])), result
    again = run(sandbox, src=conf, mode='opport')
    assert again['changed'] is False and not again.get('failed'), again


def test_a_namespace_block_beside_a_mount_block_is_refused_as_libcgroup_does(sandbox):
    before = snapshot(sandbox)
    text = namespace_conf('crtest-daemons') + 'mount {\n\tcpu = /sys/fs/cgroup/cpu;\n}\n'
    result = run(sandbox, src=write(sandbox, 'both.conf', text))
    assert result['failed'] and 'ECGMOUNTNAMESPACE' in result['msg'] and 'both.conf' in result['msg'], result
    assert snapshot(sandbox) == before


def test_perm_naming_a_group_the_host_does_not_have_is_refused_by_name(sandbox):
    before = snapshot(sandbox)
    result = run(sandbox, src=write(sandbox, 'unknown.conf', UNKNOWN_GROUP))
    assert result['failed'], result
    assert "cgroup 'web'" in result['msg'] and "gid 'crtest-no-such-group' does not exist" in result['msg'], result
    assert snapshot(sandbox) == before


def test_two_thousand_groups_with_perm_blocks(sandbox):
    conf = write(sandbox, 'large.conf', many_groups(2000, 20))
    first = run(sandbox, src=conf)
    assert first['changed'] and not first.get('failed'), first['msg'] if first.get('failed') else ''
    expected = sorted(['p%02d' % p for p in range(20)] + ['p%02d/g%04d' % (i % 20, i) for i in range(2000)])
    assert cgroups(sandbox, 'cpu') == expected and cgroups(sandbox, 'memory') == expected
    for hierarchy in ('cpu', 'memory'):
        for name in ('', 'tasks', 'cgroup.procs'):
            st = os.stat(sandbox.path(hierarchy, 'p07', 'g1987', name))
            assert (st.st_uid, st.st_gid) == (0, 0)
    # one warning for the admin perms, naming ten groups and counting the rest
    # (before: one warning of 2,000 names, some 30,000 characters)
    admin = [message(w) for w in first['warnings'] if 'admin owner' in message(w)]
    assert len(admin) == 1 and 'and 1990 more' in admin[0] and len(admin[0]) < 1000, admin
    again = run(sandbox, src=conf, mode='opport')
    assert again['changed'] is False and not again.get('failed'), again
