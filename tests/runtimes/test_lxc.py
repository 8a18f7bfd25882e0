"""Real LXC containers (Debian's lxc 5.0, busybox template, no network) with
cgroup v1 limits in their config, on this host's hierarchies: the snapshot
from the host reads the limits LXC set, and a bind-mode restore run inside
the container (lxc-attach) restores subcgroups and limits through the
/sys/fs/cgroup view that LXC built, once, and then changes nothing.

LXC 5 starts a container in a cgroup namespace of its own and then ignores
`lxc.mount.auto = cgroup:*`, leaving the cgroup mounts to the container's
init; busybox's init mounts none, so the container sees an empty
/sys/fs/cgroup (test_plain_cgroup_auto_mounts_nothing). The views tested are
made with `:force` (fresh mounts inside the cgroup namespace) and without a
cgroup namespace (a tmpfs, a directory per hierarchy, and a bind of the
container's own cgroup at its host path).

The module runs inside as tests/lib/modrun runs it in a sandbox: the module
file as a process with a JSON arguments file, by the test's own Python, which
is bound read-only into the container at its own paths (busybox has no
Python); the container's /sys/fs/cgroup stays as LXC built it.

Each container's cgroups (payload, monitor and LXC's lxc.pivot) live below a
test sandbox's subtree (lxc.cgroup.dir.*), which is removed afterwards, and
the test fails if anything is left: cgroups, processes, lxcpath, locks."""

import os

import pytest

from modrun import module_path, run_calls
from runtimes import (HostView, LxcContainer, cgroup_dirs, cgroup_mounts, read_file, require_tools, root_entries,
                      v1_hierarchy_dirs)

pytestmark = pytest.mark.kernel

# lxc.cgroup.* of every container: limits and a device whitelist.
LIMITS = [
    ('memory.limit_in_bytes', 268435456),
    ('pids.max', 100),
    ('cpu.shares', 512),
    ('devices.deny', 'a'),
    ('devices.allow', 'c *:* m'),
    ('devices.allow', 'b *:* m'),
    ('devices.allow', 'c 1:3 rwm'),
    ('devices.allow', 'c 1:5 rwm'),
    ('devices.allow', 'c 1:8 rwm'),
    ('devices.allow', 'c 1:9 rwm'),
    ('devices.allow', 'c 5:0 rwm'),
    ('devices.allow', 'c 5:1 rwm'),
    ('devices.allow', 'c 5:2 rwm'),
    ('devices.allow', 'c 136:* rwm'),
]
ALLOWED = sorted(value for key, value in LIMITS if key == 'devices.allow')
CONTROLLERS = ['cpu', 'memory', 'pids']
# What the restore inside the container sets, and what the host's kernel files must then say.
INSIDE_SPEC = {
    '/': {'controllers': CONTROLLERS, 'properties': {'pids.max': 80}},
    'app': {'controllers': CONTROLLERS,
            'properties': {'pids.max': 40, 'cpu.shares': 256, 'memory.limit_in_bytes': '128M'}},
    'app/db': {'memory.limit_in_bytes': '64M', 'pids.max': 20},
}
EXPECTED = [
    ('pids', '', 'pids.max', '80'),
    ('pids', 'app', 'pids.max', '40'),
    ('cpu', 'app', 'cpu.shares', '256'),
    ('memory', 'app', 'memory.limit_in_bytes', str(128 << 20)),
    ('memory', 'app/db', 'memory.limit_in_bytes', str(64 << 20)),
    ('pids', 'app/db', 'pids.max', '20'),
]
DIR_OF = v1_hierarchy_dirs()  # controller -> the host's hierarchy directory
V1 = sorted(set(DIR_OF.values()))


@pytest.fixture(autouse=True)
def lxc_installed():
    require_tools('lxc', 'lxc-create', 'lxc-start', 'lxc-attach', 'lxc-stop', 'lxc-destroy', 'lxc-info')


@pytest.fixture
def container_factory(sandbox):
    """Builds started LXC containers below the sandbox; afterwards stops and
    destroys them and fails on anything left, on the host's hierarchy roots
    too (no lxc.pivot, lxc.payload.* or lxc.monitor.* there), or a bridge."""
    made = []
    roots_before = root_entries()
    links_before = set(os.listdir('/sys/class/net'))

    def make(cgroup_auto, cgroupns=True):
        container = LxcContainer(sandbox, cgroup_auto, cgroupns=cgroupns, limits=LIMITS)
        made.append(container)
        return container.create().start()

    try:
        yield make
    finally:
        left = []
        for container in made:
            left += container.destroy()
        new_at_roots = dict((h, sorted(names - roots_before.get(h, set())))
                            for h, names in root_entries().items())
        left += ['%s/%s' % (h, n) for h, names in new_at_roots.items() for n in names
                 if not n.startswith(sandbox.name) and n.startswith('lxc')]
        left += ['network link %s' % n for n in sorted(set(os.listdir('/sys/class/net')) - links_before)]
        assert not left, 'LXC left behind: %s' % left


def inside(container, calls, module='cgroup_restore'):
    """Run module calls inside the container, as tests/lib/modrun does in a
    sandbox: the module file as a process with a JSON arguments file."""
    return run_calls(container, calls, module=module_path(module))


def host_snapshot(sandbox, paths):
    result = run_calls(HostView(sandbox), [(dict(paths=paths), False, False)], module=module_path('cgroup_snapshot'))[0]
    assert not result.get('failed'), result
    return result['spec']['cgroups']


def kernel(container, controller, sub, name):
    """A kernel file of the container's cgroup, read on the host."""
    return read_file('/sys/fs/cgroup', DIR_OF[controller], container.cgroup, sub, name)


def assert_config_limits(container, sandbox):
    """The snapshot from the host reads what LXC wrote from its config, and
    so do the kernel's files."""
    props = host_snapshot(sandbox, [container.cgroup])[container.cgroup]['properties']
    assert props['memory.limit_in_bytes'] == 268435456
    assert props['pids.max'] == 100
    assert props['cpu.shares'] == 512
    assert sorted(props['devices.list']) == ALLOWED
    assert kernel(container, 'memory', '', 'memory.limit_in_bytes') == '268435456'
    assert kernel(container, 'pids', '', 'pids.max') == '100'
    assert kernel(container, 'cpu', '', 'cpu.shares') == '512'
    assert sorted(kernel(container, 'devices', '', 'devices.list').splitlines()) == ALLOWED


def assert_bind_restore(container, sandbox):
    """cgroup_restore mode=bind inside the container, through its view: the
    spec's "/" is the container's cgroup; then the same call changes nothing."""
    spec = {'version': 1, 'cgroups': INSIDE_SPEC}
    first, second = inside(container, [(dict(mode='bind', spec=spec), False, False)] * 2)
    assert not first.get('failed'), first
    assert first['changed'] is True
    for hierarchy, sub, name, value in EXPECTED:
        assert kernel(container, hierarchy, sub, name) == value, (hierarchy, sub, name)
    assert sorted(c['cgroup'] for c in first['created'] if c['hierarchy'] == 'memory') == ['app', 'app/db']
    assert not second.get('failed'), second
    assert second['changed'] is False, second
    assert second['created'] == [] and second['writes'] == []
    # The host's snapshot sees the restored subcgroups below the container's cgroup.
    cgroups = host_snapshot(sandbox, [container.cgroup])
    assert cgroups[container.cgroup + '/app/db']['properties']['memory.limit_in_bytes'] == 64 << 20
    assert cgroups[container.cgroup + '/app']['properties']['pids.max'] == 40
    # And so does a snapshot inside, through the same view, relative to the container's cgroup.
    seen = inside(container, [(dict(paths=['app']), False, False)], module='cgroup_snapshot')[0]
    assert not seen.get('failed'), seen
    assert seen['spec']['cgroups']['app/db']['properties']['memory.limit_in_bytes'] == 64 << 20


@pytest.mark.parametrize('cgroup_auto', ['cgroup:mixed:force', 'cgroup:rw:force'])
def test_cgroup_namespace_view(container_factory, sandbox, cgroup_auto):
    """LXC's default cgroup namespace with :force: each v1 hierarchy mounted
    afresh at /sys/fs/cgroup/<h>, its root the namespace's, which is the
    container's cgroup."""
    container = container_factory(cgroup_auto)
    mounts = cgroup_mounts(container.mountinfo())
    for hierarchy in V1:
        assert mounts.get('/sys/fs/cgroup/' + hierarchy) == ('cgroup', '/'), mounts
    assert_config_limits(container, sandbox)
    assert_bind_restore(container, sandbox)


@pytest.mark.parametrize('cgroup_auto', ['cgroup:mixed', 'cgroup:rw'])
def test_host_cgroup_namespace_view(container_factory, sandbox, cgroup_auto):
    """Without a cgroup namespace LXC mounts a tmpfs at /sys/fs/cgroup with a
    directory per hierarchy (cgroup:mixed: a read-only bind of it) and binds
    the container's own cgroup at its host path below it. Before the
    collection knew this view, the restore refused it: "hierarchy cpu is not
    mounted under the mountpoint"."""
    container = container_factory(cgroup_auto, cgroupns=False)
    mounts = cgroup_mounts(container.mountinfo())
    for hierarchy in V1:
        assert mounts.get('/sys/fs/cgroup/%s/%s' % (hierarchy, container.cgroup)) == \
            ('cgroup', '/' + container.cgroup), mounts
        # cgroup:mixed makes /sys/fs/cgroup/<h> a read-only bind of the tmpfs; cgroup:rw leaves it a directory
        assert mounts.get('/sys/fs/cgroup/' + hierarchy, ('none',))[0] in ('none', 'tmpfs'), mounts
    assert_config_limits(container, sandbox)
    assert_bind_restore(container, sandbox)


def test_plain_cgroup_auto_mounts_nothing(container_factory, sandbox):
    """lxc.mount.auto = cgroup:mixed in LXC's default cgroup namespace: LXC
    leaves the mounts to the container's init, and busybox's mounts none. A
    bind-mode restore there refuses by name and writes nothing."""
    container = container_factory('cgroup:mixed')
    mounts = cgroup_mounts(container.mountinfo())
    assert not [point for point in mounts if point.startswith('/sys/fs/cgroup')], mounts
    before = cgroup_dirs(sandbox)
    result = inside(container, [(dict(mode='bind', spec={'version': 1, 'cgroups': INSIDE_SPEC}), False, False)])[0]
    assert result.get('failed') and 'is not mounted under the mountpoint' in result['msg'], result
    assert cgroup_dirs(sandbox) == before


def test_lxc_is_installed_without_its_services():
    """scripts/setup installs lxc with none of its services enabled for the
    next boot (lxc-net would make the lxcbr0 bridge with a dnsmasq on it),
    and no bridge is there."""
    assert not os.path.exists('/sys/class/net/lxcbr0')
    wants = '/etc/systemd/system/multi-user.target.wants'
    enabled = sorted(n for n in os.listdir(wants) if n.startswith('lxc')) if os.path.isdir(wants) else []
    assert enabled == []
