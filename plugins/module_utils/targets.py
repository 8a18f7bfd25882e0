# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where each cgroup of the spec lives: in which hierarchy, at which path
after the root remap. Pure; shared by observe and plan."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from collections import namedtuple
from operator import attrgetter

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import hierarchies as hz
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import properties
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import translate as translate_mod
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import Refusal
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.spec import remap_path, show_path

# hierarchy: a hierarchies.Hierarchy; planned: it is not mounted yet;
# props: the cgroup's properties for this hierarchy, translated to its version;
# controllers: those of the cgroup's controllers that live in this hierarchy.
Target = namedtuple('Target', 'cgroup hierarchy path planned props controllers')

_NAME = attrgetter('name')
_new = tuple.__new__  # a namedtuple from a tuple of all its fields, without the keyword handling
SYSTEMD_UNIT_SUFFIXES = ('.slice', '.scope', '.service')
UNIFIED = 'unified'  # the pseudo-controller that names the cgroup v2 hierarchy
# v2 core files that v1 keeps in a controller's hierarchy
_V2_CORE_IN_V1 = {'cgroup.freeze': 'freezer'}


def systemd_unit_in(path):
    """The first component of a path that names a systemd unit, or None."""
    for component in path:
        if component.endswith(SYSTEMD_UNIT_SUFFIXES):
            return component
    return None


def _v2_of(hierarchies):
    found = [h for h in hierarchies if h.version == 2]
    return found[0] if found else None


# The options that decide where a spec's cgroups land and how their
# properties are said there: the root remap (spec.Remap), the mountpoint,
# whether a systemd unit's cgroups may be written, and the two translation
# choices (translate: auto or never; unmappable: fail or skip).
Placement = namedtuple('Placement', 'remap mountpoint allow_systemd_managed translate unmappable',
                       defaults=(False, 'auto', 'fail'))


def placement_of(options):
    """The Placement of the module's parsed options (a spec.Options)."""
    return Placement(options.remap, options.mountpoint, options.allow_systemd_managed, options.translate,
                     options.translate_unmappable)


# targets: [Target]; planned: the hierarchies that must be mounted first
# (name -> hierarchies.Hierarchy); warnings: the properties skipped because
# they have no counterpart in their hierarchy's version (unmappable=skip).
Resolved = namedtuple('Resolved', 'targets planned warnings')


def resolve(spec, hierarchies, kernel_controllers, placement):
    """Where each cgroup of the spec lives: a Resolved, with one Target per
    (spec cgroup, hierarchy). A controller lives in its v1 hierarchy; failing
    that, where a v2 hierarchy is mounted, in it; failing that, a v1
    hierarchy is planned for mounting (see _home). placement: a Placement."""
    planned = {}
    targets = []
    warnings = []
    v2 = _v2_of(hierarchies)
    # Cgroups of one shape (controllers and property names) live in the same
    # hierarchies and split their properties the same way: work that out once.
    shapes = {}
    place = _Paths(placement)
    append = targets.append
    for cg in spec.cgroups:
        key = (cg.controllers, tuple(map(_NAME, cg.properties)))
        shape = shapes.get(key)
        if shape is None:
            shape = shapes[key] = _shape(cg, hierarchies, v2, kernel_controllers, placement.mountpoint, planned,
                                         placement.translate)
        for hierarchy, indices, controllers, needs_translation, is_planned in shape:
            path = place.path_of(cg, hierarchy)
            props = cg.properties
            own = props if indices is None else tuple([props[i] for i in indices])
            if needs_translation:
                own = _translated(own, hierarchy, path, placement, warnings)
            append(_new(Target, (cg, hierarchy, path, is_planned, own, controllers)))
    return Resolved(targets, planned, warnings)


class _Paths:
    """The path of a spec cgroup in a hierarchy, after the root remap, with
    the refusals of a read-only hierarchy and of a systemd unit. Remembers
    what it worked out: a tree repeats hierarchies and paths."""

    def __init__(self, placement):
        self.remap = placement.remap
        self.no_remap = not self.remap.root and not self.remap.roots and self.remap.root_from is None
        self.check_units = not placement.allow_systemd_managed
        self.controllers = {}  # hierarchy name -> its sorted controllers, as remap_path takes them
        self.unit_of = {}  # path -> the systemd unit it lies in, or None

    def path_of(self, cg, hierarchy):
        if hierarchy.read_only:
            raise Refusal('Failed to restore cgroup %r: hierarchy %s is mounted read-only at %s.'
                          % (show_path(cg.path), hierarchy.name, hierarchy.mount_point))
        if self.no_remap:
            path = cg.path
        else:
            controllers = self.controllers.get(hierarchy.name)
            if controllers is None:
                controllers = self.controllers[hierarchy.name] = sorted(hierarchy.controllers)
            path = remap_path(cg.path, controllers, self.remap)
        if self.check_units:
            self._refuse_systemd_unit(hierarchy, path)
        return path

    def _refuse_systemd_unit(self, hierarchy, path):
        unit = self.unit_of.get(path, False)
        if unit is False:
            unit = self.unit_of[path] = systemd_unit_in(path)
        if unit:
            raise Refusal('Failed to restore %s:%s: it lies in %s, a cgroup that systemd manages; systemd '
                          'reverts such writes on daemon-reload. Restore it the systemd way with the module '
                          'checkpoint_restore.cgroups.cgroup_systemd_unit (a delegated unit whose limits are '
                          'unit properties), restore elsewhere, or set allow_systemd_managed=true if systemd '
                          'delegates it to you.'
                          % (hierarchy.name, show_path(path), unit))


def _translated(props, hierarchy, path, placement, warnings):
    """A cgroup's properties said in its hierarchy's version. One without a
    counterpart there is refused by name, or, with unmappable=skip, left out
    with a warning (appended to warnings, the list resolve returns)."""
    own, refused = translate_mod.for_hierarchy(list(props), hierarchy.version, placement.translate)
    for prop_name, reason in sorted((refused or {}).items()):
        message = '%s:%s property %s: %s' % (hierarchy.name, show_path(path), prop_name, reason)
        if placement.unmappable != 'skip':
            raise Refusal('Failed to translate %s; use translate_unmappable=skip to restore the rest '
                          'without it.' % message)
        warnings.append('Skipped %s.' % message)
    return tuple(own)


def _shape(cg, hierarchies, v2, kernel_controllers, mountpoint, planned, translate):
    """[(hierarchy, indices of the cgroup's properties that go there, the
    cgroup's controllers in it, whether they need translate.for_hierarchy)]
    for cgroups with the controllers and property names of cg."""
    controllers = list(cg.controllers) or _without_controllers(cg, hierarchies, v2)
    home = {}
    for controller in controllers:
        home[controller] = _home(cg, controller, hierarchies, v2, kernel_controllers, mountpoint, planned)
    if not any(h.version == 2 for h in home.values()):
        # without a v2 hierarchy, cgroup.freeze is the freezer's freezer.state
        for name, controller in _V2_CORE_IN_V1.items():
            if controller not in home and any(p.name == name for p in cg.properties):
                controllers.append(controller)
                home[controller] = _home(cg, controller, hierarchies, v2, kernel_controllers, mountpoint,
                                         planned)
    by_name = {}
    for controller in controllers:
        by_name.setdefault(home[controller].name, home[controller])
    indices = _props_by_hierarchy(cg, home, by_name)
    shape = []
    for name in sorted(by_name):
        hierarchy = by_name[name]
        own = indices.get(name, [])
        props = [cg.properties[i] for i in own]
        same = translate_mod.for_hierarchy(props, hierarchy.version, translate) == (props, {})
        # indices None: every property of the cgroup, in its order
        shape.append((hierarchy, None if own == list(range(len(cg.properties))) else tuple(own),
                      tuple(sorted(c for c in controllers if home[c].name == name)), not same,
                      name in planned and hierarchy is planned[name]))
    return shape


def _without_controllers(cg, hierarchies, v2):
    """The controllers of a cgroup that names none and has no property of a
    controller (only core files, or nothing): on a host whose one hierarchy
    is cgroup v2, that hierarchy ('unified'); elsewhere it could be any, and
    is refused, unless it is the root with nothing to restore. (Through a
    container's view, root_controllers gives the root its hierarchies, and
    its subcgroups inherit them.)"""
    if v2 is not None and len(hierarchies) == 1:
        return [UNIFIED]
    if not cg.path and not cg.properties and cg.perms is None and not cg.file_perms:
        return []
    raise Refusal('Failed to restore cgroup %r: cannot tell which hierarchies it belongs to; give "controllers" '
                  'or properties of a controller.' % show_path(cg.path))


def _home(cg, controller, hierarchies, v2, kernel_controllers, mountpoint, planned):
    if controller == UNIFIED:
        if v2 is None:
            raise Refusal('Failed to restore cgroup %r: it names the cgroup v2 hierarchy (unified), and none is '
                          'mounted under %s.' % (show_path(cg.path), mountpoint))
        return v2
    hierarchy = hz.hierarchy_for(controller, hierarchies)
    if hierarchy is not None:
        return hierarchy
    # On a pure v2 host (cgroup2 at the mountpoint itself) every controller
    # lives in v2: translated there, or refused by name. On a hybrid host, so
    # do those that v2 offers and those in no v1 hierarchy (/proc/cgroups
    # hierarchy 0): mounting one of those would bind it to a new v1 hierarchy
    # kernel-wide. Only controllers the host already runs in v1 get mounted.
    if v2 is not None and not controller.startswith('name=') and (
            controller in v2.controllers or v2.name == '' or not kernel_controllers.get(controller)):
        if controller not in kernel_controllers and controller not in v2.controllers and v2.name != '':
            raise Refusal('Failed to restore cgroup %r: controller %s is not available in this kernel '
                          '(see /proc/cgroups).' % (show_path(cg.path), controller))
        return v2
    return _planned_hierarchy(cg, controller, kernel_controllers, mountpoint, planned)


def _props_by_hierarchy(cg, home, by_name):
    """{hierarchy name: [index into cg.properties]}: each property goes where
    its controller lives; v1 core files to every v1 hierarchy of the cgroup,
    v2 core files to its v2 hierarchy (or, for cgroup.freeze on v1, to the
    freezer's)."""
    result = {}
    v1_names = [n for n, h in by_name.items() if h.version == 1]
    v2_names = [n for n, h in by_name.items() if h.version == 2]
    for index, prop in enumerate(cg.properties):
        controller = properties.controller_of(prop.name)
        if controller is not None:
            # 'unified' in the spec's controllers stands for every v2 controller
            places = [home[controller].name] if controller in home else v2_names[:1]
        elif translate_mod.is_v2_name(prop.name):
            places = v2_names or ([home[_V2_CORE_IN_V1[prop.name]].name]
                                  if _V2_CORE_IN_V1.get(prop.name) in home else v1_names[:1])
        else:
            places = v1_names or v2_names[:1]
        for place in places:
            result.setdefault(place, []).append(index)
    return result


def _planned_hierarchy(cg, controller, kernel_controllers, mountpoint, planned):
    if not controller.startswith('name=') and controller not in kernel_controllers:
        raise Refusal('Failed to restore cgroup %r: controller %s is not available in this kernel '
                      '(see /proc/cgroups).' % (show_path(cg.path), controller))
    group = hz.comount_group(controller, kernel_controllers)
    name = hz.mount_dir_name(group)
    if name not in planned:
        planned[name] = hz.Hierarchy(name=name, mount_point=mountpoint.rstrip('/') + '/' + name, version=1,
                                     controllers=frozenset(group), dev=None, root='/', read_only=False)
    return planned[name]


def applies_to(prop_name, hierarchy):
    """Core files go to every hierarchy of the cgroup; others to their controller's."""
    controller = properties.controller_of(prop_name)
    return controller is None or controller in hierarchy.controllers


def ancestors(path):
    """('a', 'b', 'c') -> [('a',), ('a', 'b')]"""
    return [path[:i] for i in range(1, len(path))]
