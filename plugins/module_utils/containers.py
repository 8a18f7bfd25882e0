# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Several containers in one restore (cgroup_restore's `specs`): each
container's spec is read on its own, the containers are checked not to
share or nest cgroups, and their cgroups become one Spec. One Spec is one
plan: a strict or bind run rolls back all containers as a whole, and the
host lock is taken once."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import spec as sp
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import SpecError


def load_specs(specs, remap=None, resolve=None):
    """{container name: native spec} -> one Spec with every container's
    cgroups, or a SpecError naming the container. remap: the run's root
    remap (spec.Remap), since two containers that do not overlap in their
    specs may still land on one cgroup once root_from moves one of them."""
    if not isinstance(specs, dict) or not specs:
        raise SpecError('Invalid specs: expected a non-empty mapping of container name to its native spec '
                        '{version: 1, cgroups: {...}}.')
    loaded = [(name, _load_container(name, data, resolve)) for name, data in specs.items()]
    problems = []
    for place in _placements(remap):
        problems.extend(p for p in overlaps(loaded, place) if p not in problems)
    if problems:
        raise SpecError("Failed to restore: the containers' cgroups overlap (%s). Give each container its own "
                        "cgroups; nothing was written." % '; '.join(problems))
    return merge(spec for _name, spec in loaded)


def _load_container(name, data, resolve):
    if not isinstance(name, str) or not name.strip():
        raise SpecError('Invalid specs: container name %r: expected a non-empty string.' % (name,))
    # The spec's own errors name the cgroup and the property; an error about
    # the spec as a whole (no mapping, no cgroups, another version) names
    # the container, as no cgroup can be named.
    return sp.load_spec(data, resolve=resolve, what='spec of container %s' % name)


def merge(specs):
    """One Spec of several that share no cgroup, in load_spec's order
    (shallowest first). Each container's controllers were derived from its
    own tree, which is what the merged tree would derive: with no overlap,
    no cgroup of one container has a parent or a descendant in another."""
    cgroups = [cg for spec in specs for cg in spec.cgroups]
    return sp.Spec(cgroups=tuple(sorted(cgroups, key=lambda cg: (len(cg.path), cg.path))))


def top_level(paths):
    """The paths that have no ancestor among them, in their order; the root
    () alone when it is there, since every cgroup lies inside it."""
    paths = list(paths)
    if () in paths:
        return [()]
    known = set(paths)
    return [p for p in paths if not any(p[:depth] in known for depth in range(1, len(p)))]


def _identity(path):
    return path


def _placements(remap):
    """The functions that place a spec path where it lands: the path itself
    where remap keeps paths apart that are apart in the spec (no remap, or
    a root that is prepended); one per new root when root_from replaces a
    prefix, which may bring two paths together."""
    if remap is None or remap.root_from is None:
        return [_identity]
    new_roots = set([tuple(remap.root)] + [tuple(root) for root in remap.roots.values()])
    return [_placer(sp.Remap(root=root, roots={}, root_from=remap.root_from)) for root in sorted(new_roots)]


def _placer(one_root):
    """spec.remap_path, the targets' own rule, for one of the run's new roots."""
    return lambda path: sp.remap_path(path, (), one_root)


def overlaps(loaded, place=_identity):
    """One sentence per pair of top-level cgroups of two containers that
    are the same cgroup, or one inside the other, where `place` puts them.
    loaded: [(container name, Spec)], in the caller's order. Pairwise: a
    host has a few containers, and the message names each pair."""
    tops = []  # (name, [(placed path, spec path)])
    for name, spec in loaded:
        where = {}
        for cg in spec.cgroups:
            where.setdefault(place(cg.path), cg.path)
        tops.append((name, [(placed, where[placed]) for placed in top_level(where)]))
    problems = []
    for index, (a, a_tops) in enumerate(tops):
        for b, b_tops in tops[index + 1:]:
            for x in a_tops:
                for y in b_tops:
                    problem = _overlap(a, x, b, y)
                    if problem:
                        problems.append(problem)
    return problems


def _inside(inner, outer):
    return len(inner) > len(outer) and inner[:len(outer)] == outer


def _overlap(a, x, b, y):
    """The sentence for container a's top x and b's top y, each (placed
    path, spec path), or None when they are apart."""
    if x[0] == y[0]:
        if x[1] == y[1]:
            return '%s and %s both name the cgroup %s' % (a, b, _show(x))
        return "%s's cgroup %s and %s's cgroup %s are both placed at %s" % (
            a, _text(x[1]), b, _text(y[1]), _text(x[0]))
    if _inside(y[0], x[0]):
        return '%s lies inside %s' % (_cgroup_of(b, y), _cgroup_of(a, x))
    if _inside(x[0], y[0]):
        return '%s lies inside %s' % (_cgroup_of(a, x), _cgroup_of(b, y))
    return None


def _text(path):
    """('ct1', 'app') -> '/ct1/app'; () -> '/'."""
    return '/' + sp.show_path(path).strip('/')


def _show(top):
    """The spec path, and where it is placed when that is elsewhere."""
    placed, path = top
    return _text(path) if placed == path else '%s (placed at %s)' % (_text(path), _text(placed))


def _cgroup_of(name, top):
    return "%s's cgroup %s" % (name, _show(top))
