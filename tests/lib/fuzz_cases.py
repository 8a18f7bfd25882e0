"""hypothesis strategies for cgroup_restore's arguments: malformed types,
hostile paths, odd property names and values, mode strings, root remaps.

Controllers are drawn only from the sandbox's own view: a controller the
view lacks would make strict mode mount that hierarchy's real root."""

from hypothesis import strategies as st

VIEW_CONTROLLERS = ['cpu', 'memory', 'pids', 'cpuset', 'devices', 'freezer', 'blkio', 'name=systemd']
# Kernel controllers that are not in the sandbox view: never generated.
OUTSIDE_VIEW = ('net_cls', 'net_prio', 'perf_event', 'hugetlb', 'cpuacct', 'rdma', 'misc')

NAMES = st.sampled_from(['ct', 'ct2', 'a', 'ab', 'worker', 'w-1', 'x.y', 'ünï', 'sp ace', 'tasks', 'cgroup.procs',
                         'memory.limit_in_bytes', '..', '.', '', 'a\x00b', 'n\nl', 'x' * 300, 'machine.slice'])
PATHS = st.one_of(
    st.lists(NAMES, min_size=1, max_size=4).map('/'.join),
    st.sampled_from(['/', '//', '/ct/', 'ct//x', '../../etc', 'ct/../..', '/' * 5]),
    st.text(max_size=20),
)
PROPERTY_NAMES = st.one_of(
    st.sampled_from(['memory.limit_in_bytes', 'memory.memsw.limit_in_bytes', 'memory.soft_limit_in_bytes',
                     'cpu.shares', 'cpu.cfs_quota_us', 'cpu.cfs_period_us', 'cpu.rt_runtime_us', 'pids.max',
                     'cpuset.cpus', 'cpuset.mems', 'devices.list', 'freezer.state', 'blkio.weight',
                     'memory.oom_control', 'notify_on_release', 'cgroup.clone_children', 'cgroup.procs', 'tasks',
                     'release_agent', 'devices.allow', 'memory.usage_in_bytes', 'cpu.no_such_knob',
                     'zzz.limit', '../memory.limit_in_bytes', 'memory', '', 'pids.max\n',
                     'cpu.shares\ncpu.cfs_quota_us', 'memory.limit_in_bytes\n']),
    st.text(max_size=12),
).filter(lambda n: not n.startswith(OUTSIDE_VIEW))
VALUES = st.one_of(
    st.integers(min_value=-2 ** 70, max_value=2 ** 70), st.booleans(), st.none(), st.floats(allow_nan=True),
    st.sampled_from([2 ** 63, 2 ** 64, -2 ** 63 - 1, 10 ** 30, -2 ** 70]),
    st.sampled_from(['512M', '-1', 'max', '0-1', '0,1', '99', 'FROZEN', 'THAWED', 'c 1:3 rwm', 'a', '1\n2',
                     '100000000', '1G', '', ' ', '0x10', '18446744073709551616', 'x' * 5000, '512M\n',
                     'max\n\nmax', '0\n1', '9223372036854775808', '-9223372036854775809']),
    st.text(max_size=30),
    st.lists(st.sampled_from(['c 1:3 rwm', 'b 8:* r', 'bogus', 5]), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
PLAIN_PERMS = st.fixed_dictionaries({}, optional={
    'mode': st.one_of(st.sampled_from(['0755', '0750', '7777', '99', 'rwx']), st.integers(-5, 10000)),
    'uid': st.one_of(st.integers(-3, 70000), st.sampled_from(['root', 'nosuchuser', '1000'])),
    'gid': st.one_of(st.integers(-3, 70000), st.sampled_from(['root', 'nosuchgroup'])),
    'owner': st.just(1)})
# perms per hierarchy, keyed by the sandbox view's controllers and by keys that are none
PERMS = st.one_of(st.none(), PLAIN_PERMS, st.dictionaries(st.sampled_from(
    ['memory', 'pids', 'cpu', 'name=systemd', 'cpu,memory', 'mode', '', 'cpu;rm', 'nosuch']),
    st.one_of(PLAIN_PERMS, st.integers()), min_size=1, max_size=3))
CGROUP_BODY = st.one_of(
    st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2),
    st.dictionaries(PROPERTY_NAMES, VALUES, max_size=4),
    st.fixed_dictionaries({}, optional={
        'controllers': st.one_of(st.lists(st.one_of(st.sampled_from(VIEW_CONTROLLERS), st.sampled_from(
            ['', 'nosuch', 'name=', 'cpu;rm', 'name=zz'])), max_size=3), st.text(max_size=5), st.integers()),
        'perms': PERMS,
        'file_perms': st.one_of(st.none(), st.dictionaries(st.sampled_from(
            ['cgroup.procs', 'tasks', 'memory.limit_in_bytes', '../x', 'nofile']), PERMS, max_size=2)),
        'properties': st.one_of(st.dictionaries(PROPERTY_NAMES, VALUES, max_size=4), st.integers()),
        'extra': st.integers()}),
)
SPECS = st.one_of(
    st.fixed_dictionaries({'version': st.sampled_from([1, '1', 2, None]),
                           'cgroups': st.dictionaries(PATHS, CGROUP_BODY, max_size=4)}),
    st.fixed_dictionaries({'cgroups': st.dictionaries(PATHS, CGROUP_BODY, min_size=1, max_size=3)}),
    st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2)),
)
MODES = st.one_of(st.sampled_from(['strict', 'opport', 'bind']),
                  st.sampled_from(['strict,opport', 'bind|strict', 'STRICT', 'soft', '', 'full', 'strict opport']),
                  st.text(max_size=8))
ROOTS = st.one_of(st.none(), st.sampled_from(['r1', '/r1/r2', '../x', 'a//b', '/', 'ct', '..', 'machine.slice']),
                  st.text(max_size=6))
PARAMS = st.fixed_dictionaries({'spec': SPECS}, optional={
    'mode': MODES,
    'restore_properties': st.sampled_from(['all', 'created', 'none']),
    'root': ROOTS,
    'root_from': ROOTS,
    'roots': st.one_of(st.none(), st.dictionaries(st.sampled_from(['cpu', 'memory', 'pids', 'cpuacct', '']), ROOTS,
                                                  max_size=2)),
    'prune': st.booleans(),
    'missing_properties': st.sampled_from(['fail', 'warn']),
})

# Mostly valid arguments, so that the campaign also exercises real writes,
# rollbacks and kernel refusals, not only the spec reader.
VALID_VALUES = {
    'memory.limit_in_bytes': st.one_of(st.integers(-1, 2 ** 34), st.sampled_from(['64M', '1G', 'max', '-1']),
                                       st.sampled_from([2 ** 63, 2 ** 64, -2])),
    'memory.soft_limit_in_bytes': st.integers(-1, 2 ** 33),
    'cpu.shares': st.integers(0, 300000),
    'cpu.cfs_quota_us': st.one_of(st.just(-1), st.integers(500, 400000)),
    'cpu.cfs_period_us': st.integers(500, 1100000),
    'pids.max': st.one_of(st.just('max'), st.integers(-1, 5000), st.sampled_from([2 ** 63, -2])),
    'cpuset.cpus': st.sampled_from(['0', '1', '0-1', '0,1', '', '5', '0-3']),
    'cpuset.mems': st.sampled_from(['0', '', '1']),
    'freezer.state': st.sampled_from(['THAWED', 'FROZEN', 'thawed', 'melted']),
    'devices.list': st.lists(st.sampled_from(['c 1:3 rwm', 'c 1:5 rw', 'b 8:* r', 'a', 'c 999:1 m']), max_size=3),
    'blkio.weight': st.integers(0, 1200),
    'notify_on_release': st.integers(0, 2),
}
VALID_BODY = st.dictionaries(st.sampled_from(sorted(VALID_VALUES)), st.just(None), max_size=4).flatmap(
    lambda names: st.fixed_dictionaries(dict((n, VALID_VALUES[n]) for n in names)))
VALID_PARAMS = st.fixed_dictionaries({
    'spec': st.fixed_dictionaries({'version': st.just(1), 'cgroups': st.dictionaries(
        st.sampled_from(['ct', 'ct/a', 'ct/a/b', 'ct2', 'ab', '/']), VALID_BODY, min_size=1, max_size=4)}),
    'mode': st.sampled_from(['strict', 'opport', 'bind']),
}, optional={
    'restore_properties': st.sampled_from(['all', 'created', 'none']),
    'root': st.sampled_from(['r1', 'r1/r2', 'ct']),
    'root_from': st.sampled_from(['ct', 'a']),
    'prune': st.booleans(),
    'missing_properties': st.sampled_from(['fail', 'warn']),
})
ARGUMENTS = st.one_of(VALID_PARAMS, PARAMS)

# The input categories the campaign must hit; categories() says which ones a
# generated case exercises, so the test can show that each was really run.
CATEGORIES = ('malformed type', 'path with ..', 'path with odd /', 'path with NUL', 'very long name',
              'control-file name', 'unicode path', 'newline in a property name or value', 'huge number',
              'negative number', 'mode string', 'root remap')
CONTROL_FILES = ('tasks', 'cgroup.procs', 'memory.limit_in_bytes')
BODY_KEYS = ('controllers', 'perms', 'file_perms', 'properties', 'extra')


def _path_categories(path):
    hit = set()
    parts = path.split('/')
    if '..' in parts:
        hit.add('path with ..')
    if path.startswith('/') or path.endswith('/') or '//' in path:
        hit.add('path with odd /')
    if '\x00' in path:
        hit.add('path with NUL')
    if any(len(part) > 255 for part in parts):
        hit.add('very long name')
    if any(part in CONTROL_FILES for part in parts):
        hit.add('control-file name')
    if any(ord(char) > 127 for char in path):
        hit.add('unicode path')
    return hit


def _value_categories(value):
    hit = set()
    if isinstance(value, bool) or value is None or isinstance(value, (float, dict)):
        hit.add('malformed type')
    elif isinstance(value, int):
        if value < 0:
            hit.add('negative number')
        if abs(value) >= 2 ** 63:
            hit.add('huge number')
    elif isinstance(value, str):
        if '\n' in value:
            hit.add('newline in a property name or value')
        if value.strip().startswith('-'):
            hit.add('negative number')
        if value.strip().isdigit() and int(value) >= 2 ** 63:
            hit.add('huge number')
    elif isinstance(value, list):
        hit.update(*[_value_categories(item) for item in value])
    return hit


def _properties(body):
    """The property mapping of a cgroup body, or None if the body is malformed."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        return None
    if any(key in BODY_KEYS for key in body):
        props = body.get('properties', {})
        return props if isinstance(props, dict) else None
    return body


def categories(params):
    """The categories of CATEGORIES that one generated argument set exercises."""
    hit = set()
    spec = params.get('spec')
    cgroups = spec.get('cgroups') if isinstance(spec, dict) else None
    if not isinstance(cgroups, dict):
        hit.add('malformed type')
        cgroups = {}
    for path, body in cgroups.items():
        hit.update(_path_categories(path))
        props = _properties(body)
        if props is None:
            hit.add('malformed type')
            props = {}
        if isinstance(body, dict) and not isinstance(body.get('controllers', []), list):
            hit.add('malformed type')
        for name, value in props.items():
            if '\n' in name:
                hit.add('newline in a property name or value')
            hit.update(_value_categories(value))
    if isinstance(params.get('mode'), str):
        hit.add('mode string')
    remaps = [params.get('root'), params.get('root_from')] + list((params.get('roots') or {}).values())
    for root in remaps:
        if root is not None:
            hit.add('root remap')
            hit.update(_path_categories(root))
    return hit
