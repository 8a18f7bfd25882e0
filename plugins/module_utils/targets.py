# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where each cgroup of the spec lives: in which hierarchy, at which path
after the root remap. Pure; shared by observe and plan."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from collections import namedtuple

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import hierarchies as hz
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import properties
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import Refusal
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.spec import remap_path, show_path

# hierarchy: a hierarchies.Hierarchy; planned: it is not mounted yet.
Target = namedtuple('Target', 'cgroup hierarchy path planned')


SYSTEMD_UNIT_SUFFIXES = ('.slice', '.scope', '.service')


def systemd_unit_in(path):
    """The first component of a path that names a systemd unit, or None."""
    for component in path:
        if component.endswith(SYSTEMD_UNIT_SUFFIXES):
            return component
    return None


def resolve(spec, hierarchies, kernel_controllers, remap, mountpoint, allow_systemd_managed=False):
    """A list of Targets, one per (spec cgroup, hierarchy), and the hierarchies
    that must be mounted first (name -> Hierarchy)."""
    planned = {}
    targets = []
    for cg in spec.cgroups:
        seen = set()
        for controller in cg.controllers:
            hierarchy = hz.hierarchy_for(controller, hierarchies)
            is_planned = False
            if hierarchy is None:
                hierarchy = _planned_hierarchy(cg, controller, kernel_controllers, mountpoint, planned)
                is_planned = True
            if hierarchy.version == 2:
                raise Refusal('Failed to restore cgroup %r: controller %s is on the cgroup v2 hierarchy at %s, '
                              'and this version restores cgroup v1 hierarchies only.'
                              % (show_path(cg.path), controller, hierarchy.mount_point))
            if hierarchy.name in seen:
                continue
            seen.add(hierarchy.name)
            if hierarchy.read_only:
                raise Refusal('Failed to restore cgroup %r: hierarchy %s is mounted read-only at %s.'
                              % (show_path(cg.path), hierarchy.name, hierarchy.mount_point))
            path = remap_path(cg.path, sorted(hierarchy.controllers), remap)
            unit = None if allow_systemd_managed else systemd_unit_in(path)
            if unit:
                raise Refusal('Failed to restore %s:%s: it lies in %s, a cgroup that systemd manages; systemd '
                              'reverts such writes on daemon-reload. Restore elsewhere, or set '
                              'allow_systemd_managed=true if systemd delegates it to you.'
                              % (hierarchy.name, show_path(path), unit))
            targets.append(Target(cg, hierarchy, path, is_planned))
    return targets, planned


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
