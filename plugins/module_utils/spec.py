# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the native spec (version 1) and the module's options into plain
immutable objects. No I/O here except reading a spec file and resolving
user and group names."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
from collections import namedtuple
from operator import attrgetter

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import properties
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import SpecError

RESTORE_PROPERTIES = ('all', 'created', 'none')
_FULL_FORM_KEYS = frozenset(['controllers', 'perms', 'file_perms', 'properties'])
_NAME_MAX = 255

Perms = namedtuple('Perms', 'mode uid gid')
# Owner and mode that differ between the hierarchies a cgroup lives in:
# entries is ((controllers, Perms), ...), one per hierarchy, each named by its
# controllers (('cpu', 'cpuacct'), ('name=systemd',), ('unified',) for v2).
PerHierarchy = namedtuple('PerHierarchy', 'entries')
_PERMS_KEYS = frozenset(['mode', 'uid', 'gid'])
Property = namedtuple('Property', 'name value spec_value')
CgroupSpec = namedtuple('CgroupSpec', 'path controllers perms file_perms properties')
Spec = namedtuple('Spec', 'cgroups')
Remap = namedtuple('Remap', 'root roots root_from')
Options = namedtuple('Options', ('mode restore_properties prune remap mountpoint missing_properties '
                                 'allow_systemd_managed translate translate_unmappable fit_destination report'))


def show_path(path):
    """('ct101', 'worker') -> 'ct101/worker'; () -> '/'."""
    return '/'.join(path) if path else '/'


def split_path(text, what='cgroup path', known_good=None):
    """Validate a cgroup path and split it into components; '/' is ().
    known_good: a set of components already found valid, kept by a _Reader
    for the paths of one spec (a tree repeats its containers' names)."""
    if not isinstance(text, str):
        raise SpecError('Invalid %s %r: expected a string.' % (what, text))
    if text == '':
        raise SpecError('Invalid %s: it is empty; use "/" for the hierarchy root.' % what)
    if len(text) > 1024 and len(text.encode('utf-8', 'surrogateescape')) > 4096:  # 4 bytes a character at most
        raise SpecError('Invalid %s %r: longer than 4096 bytes.' % (what, text[:64] + '...'))
    # One leading and one trailing slash are allowed: '/ct101/' is 'ct101'.
    inner = text[1:] if text.startswith('/') else text
    inner = inner[:-1] if inner.endswith('/') else inner
    if inner == '':
        return ()
    components = tuple(inner.split('/'))
    for component in components:
        if known_good is None or component not in known_good:
            reason = _component_problem(component)
            if reason:
                raise SpecError('Invalid %s %r: component %r %s.' % (what, text, component, reason))
            if known_good is not None:
                known_good.add(component)
    return components


def _component_problem(component):
    if component == '':
        return 'is empty (a double slash)'
    if component in ('.', '..'):
        return 'is a relative reference'
    if '\x00' in component:
        return 'contains a NUL byte'
    if any(ord(c) < 32 or ord(c) == 127 for c in component):
        return 'contains a control character'
    if len(component.encode('utf-8', 'surrogateescape')) > _NAME_MAX:
        return 'is longer than %d bytes' % _NAME_MAX
    if properties.is_control_file_name(component):
        return 'is named like a cgroup control file'
    return None


def _parse_mode_bits(where, value):
    if isinstance(value, bool):
        raise SpecError('Invalid spec: %s: mode must be an octal string such as "0755".' % where)
    if isinstance(value, int):
        mode = value
    elif isinstance(value, str) and value.strip() and all(c in '01234567' for c in value.strip()):
        mode = int(value.strip(), 8)
    else:
        raise SpecError('Invalid spec: %s: mode %r is not an octal mode such as "0755".' % (where, value))
    if not 0 <= mode <= 0o7777:
        raise SpecError('Invalid spec: %s: mode %r is out of range.' % (where, value))
    return mode


def _parse_id(where, field, value, resolve):
    if isinstance(value, bool):
        raise SpecError('Invalid spec: %s: %s must be a number or a name.' % (where, field))
    if isinstance(value, int):
        if value < 0 or value > 0xfffffffe:
            raise SpecError('Invalid spec: %s: %s %d is out of range.' % (where, field, value))
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return _parse_id(where, field, int(value.strip()), resolve)
    if isinstance(value, str) and value.strip():
        resolved = resolve(field, value.strip()) if resolve else None
        if resolved is None:
            raise SpecError('Invalid spec: %s: %s %r does not exist on this host.' % (where, field, value))
        return resolved
    raise SpecError('Invalid spec: %s: %s %r is not a number or a name.' % (where, field, value))


def parse_perms(where, data, resolve=None):
    if data is None:
        return None
    if not isinstance(data, dict):
        raise SpecError('Invalid spec: %s: perms must be a mapping of mode, uid and gid.' % where)
    unknown = set(data) - _PERMS_KEYS
    if unknown:
        raise SpecError('Invalid spec: %s: unknown perms key(s) %s; use mode, uid and gid, or give each hierarchy '
                        'its own mapping of them ({memory: {mode: ...}, pids: {...}}).'
                        % (where, ', '.join(sorted(str(k) for k in unknown))))
    return Perms(
        mode=_parse_mode_bits(where, data['mode']) if data.get('mode') is not None else None,
        uid=_parse_id(where, 'uid', data['uid'], resolve) if data.get('uid') is not None else None,
        gid=_parse_id(where, 'gid', data['gid'], resolve) if data.get('gid') is not None else None)


def _is_per_hierarchy(data):
    """True for perms given per hierarchy ({memory: {mode: ...}, pids: {...}}):
    a non-empty mapping whose every value is a mapping. The plain form's
    values (mode, uid, gid) are never mappings."""
    return isinstance(data, dict) and bool(data) and all(isinstance(v, dict) for v in data.values())


def parse_perms_value(where, data, resolve=None):
    """perms, or one file's perms: the plain form {mode, uid, gid} -> Perms,
    or per hierarchy {hierarchy: {mode, uid, gid}} -> PerHierarchy. A
    hierarchy is named by its controllers: memory, cpu,cpuacct (comounted),
    name=systemd, unified (cgroup v2)."""
    if not _is_per_hierarchy(data):
        return parse_perms(where, data, resolve)
    entries = []
    owner = {}  # controller -> the key that names it
    for key in sorted(data, key=str):
        if not isinstance(key, str) or key in _PERMS_KEYS:
            raise SpecError('Invalid spec: %s: perms key %r has a mapping as its value, so it must name a '
                            'hierarchy by its controllers (memory, cpu,cpuacct, name=systemd, unified); %r is '
                            'not one. Give mode, uid and gid either directly or for every hierarchy.'
                            % (where, key, key))
        controllers = _check_controllers('%s, perms key %r' % (where, key), key)
        for controller in controllers:
            if controller in owner:
                raise SpecError('Invalid spec: %s: perms keys %r and %r both name controller %s; name each '
                                'hierarchy once.' % (where, owner[controller], key, controller))
            owner[controller] = key
        entries.append((controllers, parse_perms('%s, hierarchy %s' % (where, key), data[key], resolve)))
    return PerHierarchy(tuple(entries))


def show_perms_key(controllers):
    """('cpu', 'cpuacct') -> 'cpu,cpuacct', the key of a hierarchy in per-hierarchy perms."""
    return ','.join(controllers)


def _check_controllers(where, value):
    if isinstance(value, str):
        value = [c.strip() for c in value.split(',')]
    if not isinstance(value, (list, tuple)) or not value:
        raise SpecError('Invalid spec: %s: controllers must be a non-empty list of names.' % where)
    names = []
    for name in value:
        if not isinstance(name, str) or not name or not all(
                c.isalnum() or c in '_=-.' for c in name) or name.startswith('name=') and len(name) == 5:
            raise SpecError('Invalid spec: %s: %r is not a controller name.' % (where, name))
        names.append(name)
    return tuple(sorted(set(names)))


_new = tuple.__new__  # a namedtuple from a tuple of all its fields, without the keyword handling


def _where(path):
    return 'cgroup %r' % show_path(path)


class _Reader:
    """Reads the cgroups of one spec (made per load_spec call). A tree
    repeats the same few names, controller lists and property mappings:
    each is validated and parsed once, in memos that live as long as the
    reader, so nothing carries over from one spec to the next."""

    def __init__(self, resolve):
        self.resolve = resolve
        self.good_components = set()  # path components found valid
        self.controllers_seen = {}  # controller list (tuple) -> validated
        self.properties_seen = {}  # (name, type, value) -> Property, for str and int values
        self.property_sets_seen = {}  # (items, their types) -> parsed properties, for plain values
        self.names_allowed = set()  # property names that refusal_reason allows
        self.perms_seen = {}  # plain perms mapping (items with their types) -> Perms

    def cgroup(self, key, body):
        path = split_path(key, known_good=self.good_components)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise SpecError('Invalid spec: %s: expected a mapping of properties or of '
                            'controllers/perms/file_perms/properties.' % _where(path))
        if not _FULL_FORM_KEYS.isdisjoint(body):
            unknown = set(body) - _FULL_FORM_KEYS if not _FULL_FORM_KEYS.issuperset(body) else None
            if unknown:
                raise SpecError('Invalid spec: %s: unknown key(s) %s; put properties under "properties".'
                                % (_where(path), ', '.join(sorted(str(k) for k in unknown))))
            props = body.get('properties') or {}
            if not isinstance(props, dict):
                raise SpecError('Invalid spec: %s: properties must be a mapping.' % _where(path))
            file_perms = body.get('file_perms') or {}
            perms = body.get('perms')
            controllers = body.get('controllers')
        else:
            props = body
            file_perms, perms, controllers = {}, None, None
        parsed = self._properties(path, props)
        if not isinstance(file_perms, dict):
            raise SpecError('Invalid spec: %s: file_perms must be a mapping of file name to perms.' % _where(path))
        files = []
        for name in sorted(file_perms, key=str) if file_perms else ():
            if not isinstance(name, str) or properties.refusal_reason(name) == 'it is not a cgroup file name':
                raise SpecError('Invalid spec: %s: file_perms names %r, which is not a cgroup file.'
                                % (_where(path), name))
            files.append((name, self._perms('%s, file %r' % (_where(path), name), file_perms[name])))
        if controllers is not None:
            controllers = self._controllers(_where(path), controllers)
        return _new(CgroupSpec, (path, controllers,
                                 self._perms(_where(path), perms) if perms is not None else None,
                                 tuple(files), parsed))

    def _perms(self, where, data):
        """parse_perms_value, once per plain {mode, uid, gid} mapping: a tree
        gives most of its cgroups and files the same owner and mode (the perm
        blocks of a libcgroup config, a CRIU image). Keyed by the items with
        their types, as the property mappings are; a value that does not
        parse is refused each time, by its own cgroup's name."""
        try:
            key = tuple(sorted((k, v.__class__, v) for k, v in data.items())) if (
                data.__class__ is dict and all(v.__class__ in (str, int) for v in data.values())) else None
        except TypeError:  # keys that do not sort: the slow way names them
            key = None
        found = self.perms_seen.get(key) if key is not None else None
        if found is None:
            found = parse_perms_value(where, data, self.resolve)
            if key is not None:
                self.perms_seen[key] = found
        return found

    def _controllers(self, where, value):
        if not isinstance(value, list):
            return _check_controllers(where, value)
        key = tuple(value)
        found = self.controllers_seen.get(key)
        if found is None:
            found = self.controllers_seen[key] = _check_controllers(where, value)
        return found

    def _properties(self, path, props):
        """The cgroup's properties, sorted by name. Each mapping of plain
        values (str, int) is validated and parsed once, keyed by its items
        and their types (1, 1.0, True and '1' stay apart)."""
        try:
            types = tuple(map(type, props.values()))
            key = (tuple(props.items()), types) if _PLAIN_TYPES.issuperset(types) else None
            found = self.property_sets_seen.get(key) if key is not None else None
        except TypeError:  # a key that is no string, or not hashable: the slow way names it
            key = found = None
        if found is not None:
            return found
        where = _where(path)
        for name in props:
            if not isinstance(name, str):
                raise SpecError('Invalid spec: %s: property name %r is not a string.' % (where, name))
        parsed = tuple(self._property(where, name, props[name]) for name in sorted(props))
        if 'memory.limit_in_bytes' in props and 'memory.memsw.limit_in_bytes' in props:
            _check_memsw(where, parsed)
        if key is not None:
            self.property_sets_seen[key] = parsed
        return parsed

    def _property(self, where, name, value):
        # Each (name, value) pair is validated and parsed once. The key has
        # the value's type, so 1, 1.0, True and '1' stay apart.
        key = (name, value.__class__, value) if value.__class__ in (str, int) else None
        if key is not None:
            found = self.properties_seen.get(key)
            if found is not None:
                return found
        if name in self.names_allowed:
            reason = None
        else:
            reason = properties.refusal_reason(name)
            if not reason:
                self.names_allowed.add(name)
        prop = _check_property(where, name, value, reason)
        if key is not None:
            self.properties_seen[key] = prop
        return prop


def _check_property(where, name, value, reason):
    """The Property of a name and value; reason: why the name is refused, or None."""
    if reason:
        raise SpecError('Invalid spec: %s, property %r: refused, %s.' % (where, name, reason))
    if value is None:
        raise SpecError('Invalid spec: %s, property %r: the value is empty.' % (where, name))
    try:
        canonical = properties.kind_of(name).parse(value)
    except ValueError as exc:
        raise SpecError('Invalid spec: %s, property %r: %s.' % (where, name, exc))
    return Property(name, canonical, value)


_PLAIN_TYPES = frozenset([str, int])


def _check_memsw(where, parsed):
    by_name = dict((p.name, p.value) for p in parsed)
    limit, memsw = by_name['memory.limit_in_bytes'], by_name['memory.memsw.limit_in_bytes']
    if memsw != 'max' and (limit == 'max' or memsw < limit):
        raise SpecError('Invalid spec: %s, property \'memory.memsw.limit_in_bytes\': it must be at least '
                        'memory.limit_in_bytes; the kernel refuses a smaller value.' % where)


def _derive_controllers(cgroups):
    """Fill in controllers: explicit, else those of the properties plus the
    parent's (a subcgroup lives where its container lives) plus those its
    descendants in the spec live in (in every hierarchy a cgroup's parent
    exists: bind mode creates a subcgroup only below one of the spec's
    cgroups in the same hierarchy). A cgroup left with none is placed by the
    host (targets.resolve): on a pure cgroup v2 host it lives in the one
    hierarchy, elsewhere it is refused."""
    by_path = {}
    order = []  # the paths, shallowest first
    owned = {}  # property and file names -> the controllers they belong to
    checked = set()  # (own controllers, explicit controllers) found consistent
    derived = set()  # paths whose controllers were left out of the spec
    parent_of = {}  # path -> its nearest ancestor in the spec, where derived ones can use it
    for cg in sorted(cgroups, key=_by_depth):
        names = tuple(map(_NAME, cg.properties))
        if cg.file_perms:
            names += tuple(name for name, _perms in cg.file_perms)
        own = owned.get(names)
        if own is None:
            own = owned[names] = frozenset(filter(None, (properties.controller_of(name) for name in names)))
        # a parent is derived only if some cgroup before this one was
        parent = _nearest_parent(cg.path, by_path) if cg.controllers is None or derived else None
        if parent is not None:
            parent_of[cg.path] = parent.path
        if cg.controllers is not None and (own, cg.controllers) in checked:
            controllers = cg.controllers
        elif cg.controllers is not None:
            # 'unified' names the whole cgroup v2 hierarchy, with every controller in it
            missing = set() if 'unified' in cg.controllers else own - set(cg.controllers)
            checked.add((own, cg.controllers))
            if missing:
                raise SpecError('Invalid spec: cgroup %r: it has properties of %s, which is not in its controllers %s.'
                                % (show_path(cg.path), ', '.join(sorted(missing)), ', '.join(cg.controllers)))
            controllers = cg.controllers
        else:
            derived.add(cg.path)
            inherited = set(parent.controllers) if parent is not None else set()
            controllers = tuple(sorted(own | inherited))
        keys = _perms_keys(cg)
        if keys:
            controllers = _with_perms_keys(cg, controllers, keys)
        if controllers is not cg.controllers:
            cg = cg._replace(controllers=controllers)
        by_path[cg.path] = cg
        order.append(cg.path)
    if derived:
        _add_descendants_controllers(by_path, order, parent_of, derived)
    return tuple(by_path[path] for path in order)


def _add_descendants_controllers(by_path, order, parent_of, derived):
    """Bottom-up: each cgroup whose controllers were derived also lives in
    the hierarchies of its descendants in the spec. Explicit controllers are
    the spec's word and stay as they are."""
    for path in reversed(order):  # deepest first
        parent_path = parent_of.get(path)
        if parent_path is None or parent_path not in derived:
            continue
        controllers, parent = by_path[path].controllers, by_path[parent_path]
        if controllers and not set(parent.controllers).issuperset(controllers):
            wanted = tuple(sorted(set(parent.controllers) | set(controllers)))
            by_path[parent_path] = parent._replace(controllers=wanted)


def _perms_keys(cg):
    """The hierarchies (as controller tuples) that the cgroup's per-hierarchy
    perms and file_perms name; () for the plain form, which is the usual."""
    keys = list(cg.perms.entries) if cg.perms.__class__ is PerHierarchy else []
    for _name, perms in cg.file_perms:
        if perms.__class__ is PerHierarchy:
            keys.extend(perms.entries)
    return tuple(sorted(set(controllers for controllers, _perms in keys)))


def _with_perms_keys(cg, controllers, keys):
    """A cgroup lives in the hierarchies its perms name: with explicit
    controllers, each key must name one of them; else they are added."""
    if cg.controllers is None:
        return tuple(sorted(set(controllers).union(*keys)))
    if 'unified' not in controllers:
        for key in keys:
            if not set(key) & set(controllers):
                raise SpecError('Invalid spec: cgroup %r: its perms name hierarchy %s, which is not in its '
                                'controllers %s.' % (show_path(cg.path), show_perms_key(key), ', '.join(controllers)))
    return controllers


def with_view_root(data, controllers, root_path=()):
    """The spec data with the view's root cgroup placed in `controllers`: in
    a container's view (bind mode through the premount role) the root is
    the container's top-level cgroup, which exists in each of its
    hierarchies, so every other cgroup of the spec is a subcgroup there,
    which bind mode creates, whatever properties the root names, and when
    the spec leaves it out. root_path: the spec's path of that cgroup ('/',
    or the root_from prefix of a spec that names the source host's paths).
    A root that names its own controllers is the spec's word and is kept;
    data that is not a spec is passed on as it is, for load_spec to refuse."""
    if not controllers or not isinstance(data, dict) or not isinstance(data.get('cgroups'), dict):
        return data
    cgroups = dict(data['cgroups'])
    key = show_path(root_path)
    for name in cgroups:
        try:
            if split_path(name) == tuple(root_path):
                key = name
                break
        except SpecError:
            continue  # load_spec names it
    body = cgroups.get(key)
    if body is None:
        body = {}
    elif not isinstance(body, dict):
        return data
    elif 'controllers' in body:
        return data
    elif not _FULL_FORM_KEYS.intersection(body):
        body = {'properties': body}  # the shorthand: a mapping of properties
    cgroups[key] = dict(body, controllers=sorted(set(controllers)))
    return dict(data, cgroups=cgroups)


def _by_depth(cg):
    return (len(cg.path), cg.path)


_NAME = attrgetter('name')


def _nearest_parent(path, by_path):
    for depth in range(len(path) - 1, -1, -1):
        if path[:depth] in by_path and (depth > 0 or () in by_path):
            return by_path[path[:depth]]
    return None


def load_spec(data, resolve=None, what='spec'):
    """Validate a native spec mapping and return a Spec. what: how an error
    about the spec as a whole names it ('spec of container ct1'); an error
    inside it names the cgroup and the property."""
    if not isinstance(data, dict):
        raise SpecError('Invalid %s: expected a mapping with "version" and "cgroups".' % what)
    unknown = set(data) - set(['version', 'cgroups'])
    if unknown:
        raise SpecError('Invalid %s: unknown top-level key(s) %s; expected version and cgroups.'
                        % (what, ', '.join(sorted(str(k) for k in unknown))))
    version = data.get('version', 1)
    if version not in (1, '1'):
        raise SpecError('Invalid %s: version %r is not supported; this collection reads version 1.'
                        % (what, version))
    cgroups = data.get('cgroups')
    if not isinstance(cgroups, dict) or not cgroups:
        raise SpecError('Invalid %s: "cgroups" must be a non-empty mapping of cgroup paths.' % what)
    parsed = []
    seen = {}
    reader = _Reader(resolve)
    for key in cgroups:
        if not isinstance(key, str):
            raise SpecError('Invalid %s: cgroup path %r is not a string.' % (what, key))
        cg = reader.cgroup(key, cgroups[key])
        if cg.path in seen:
            raise SpecError('Invalid %s: %r and %r name the same cgroup.' % (what, seen[cg.path], key))
        seen[cg.path] = key
        parsed.append(cg)
    return Spec(cgroups=_derive_controllers(parsed))


def read_spec_file(path):
    """Load a JSON or YAML spec file from the target."""
    try:
        with open(path, 'rb') as handle:
            text = handle.read().decode('utf-8')
    except (IOError, OSError) as exc:
        raise SpecError('Failed to read spec file %s: %s.' % (path, exc.strerror or exc))
    except UnicodeDecodeError:
        raise SpecError('Failed to read spec file %s: it is not UTF-8 text.' % path)
    stripped = text.lstrip()
    if stripped.startswith('{'):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise SpecError('Failed to parse spec file %s as JSON: %s.' % (path, exc))
    try:
        import yaml
    except ImportError:
        raise SpecError('Failed to read spec file %s: it is YAML, and PyYAML is not installed on this '
                        'host; install python3-yaml or give the spec as JSON.' % path)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError('Failed to parse spec file %s as YAML: %s.' % (path, exc))


def parse_remap(root, roots, root_from):
    """Root remap options: root (every controller) and roots (per controller)."""
    new_root = split_path(root, 'root') if root else ()
    per_controller = {}
    for controller, value in (roots or {}).items():
        if not isinstance(controller, str) or not controller:
            raise SpecError('Invalid roots: key %r is not a controller name.' % (controller,))
        per_controller[controller] = split_path(value, 'root for controller %s' % controller)
    old = split_path(root_from, 'root_from') if root_from else None
    return Remap(root=new_root, roots=per_controller, root_from=old)


def remap_path(path, hierarchy_controllers, remap):
    """Where a spec path lives in a hierarchy. Prefixes match whole components,
    so root_from 'a' moves 'a/x' but never 'ab'."""
    matches = set(tuple(remap.roots[c]) for c in hierarchy_controllers if c in remap.roots)
    if len(matches) > 1:
        raise SpecError('Invalid roots: controllers %s share one hierarchy but are given different roots.'
                        % ', '.join(sorted(c for c in hierarchy_controllers if c in remap.roots)))
    new_root = matches.pop() if matches else remap.root
    if remap.root_from is None:
        return new_root + path
    old = remap.root_from
    if path[:len(old)] == old:
        return new_root + path[len(old):]
    return path


def spec_data(cgroups):
    """A native spec mapping from {path tuple: {'controllers', 'perms',
    'file_perms', 'properties'}}, leaving out what is empty: what the
    snapshot and the foreign-format readers produce."""
    result = {}
    for path in sorted(cgroups):
        entry = cgroups[path]
        body = {}
        if entry['controllers']:
            body['controllers'] = sorted(entry['controllers'])
        if entry['perms'] is not None:
            body['perms'] = entry['perms']
        if entry['file_perms']:
            body['file_perms'] = entry['file_perms']
        body['properties'] = entry['properties']
        result[show_path(path)] = body
    return {'version': 1, 'cgroups': result}
