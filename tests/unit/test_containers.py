"""Several containers in one restore (cgroup_restore's specs): each spec
read on its own, overlaps refused by name, the rest merged into one Spec."""

import pytest

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import containers
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import restore
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import spec as sp
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import SpecError

CT1 = {'version': 1, 'cgroups': {
    'ct1': {'controllers': ['memory', 'pids'], 'properties': {'pids.max': 5}},
    'ct1/app': {'pids.max': 3}}}
REFUSED = ("Failed to restore: the containers' cgroups overlap (%s). Give each container its own cgroups; "
           "nothing was written.")


def one(cgroups):
    return {'version': 1, 'cgroups': cgroups}


def refusal(specs, remap=None):
    with pytest.raises(SpecError) as caught:
        containers.load_specs(specs, remap)
    return str(caught.value)


def test_the_merged_spec_is_what_one_spec_of_all_the_cgroups_reads_as():
    specs = {'ct1': CT1, 'ct2': one({'ct2': {'pids.max': 7}, 'ct2/a/b': {'memory.limit_in_bytes': '8M'}})}
    merged = containers.load_specs(specs)
    together = sp.load_spec(one(dict(CT1['cgroups'], **specs['ct2']['cgroups'])))
    assert merged == together
    assert [sp.show_path(cg.path) for cg in merged.cgroups] == ['ct1', 'ct2', 'ct1/app', 'ct2/a/b']


@pytest.mark.parametrize('ct2, problem', [
    (one({'ct1': {'pids.max': 7}}), 'ct1 and ct2 both name the cgroup /ct1'),
    (one({'ct1/app': {'pids.max': 7}}), "ct2's cgroup /ct1/app lies inside ct1's cgroup /ct1"),
    (one({'/': {'pids.max': 7}, 'x': {}}), "ct1's cgroup /ct1 lies inside ct2's cgroup /"),
    (one({'/ct1/app/deep/': {'pids.max': 7}}), "ct2's cgroup /ct1/app/deep lies inside ct1's cgroup /ct1"),
])
def test_containers_that_share_or_nest_cgroups_are_refused_naming_both(ct2, problem):
    assert refusal({'ct1': CT1, 'ct2': ct2}) == REFUSED % problem


def test_a_container_outside_the_other_is_not_an_overlap_even_with_a_common_prefix():
    merged = containers.load_specs({'ct1': CT1, 'ct10': one({'ct10': {'pids.max': 1}, 'ct1x/app': {}})})
    assert len(merged.cgroups) == 4


def test_every_overlapping_pair_is_named():
    message = refusal({'a': one({'x': {}}), 'b': one({'x/y': {}}), 'c': one({'/': {}})})
    assert message == REFUSED % ("b's cgroup /x/y lies inside a's cgroup /x; a's cgroup /x lies inside c's cgroup /; "
                                 "b's cgroup /x/y lies inside c's cgroup /")


def test_top_level_cgroups_have_no_ancestor_in_the_spec():
    assert containers.top_level([('a',), ('a', 'b', 'c'), ('d', 'e')]) == [('a',), ('d', 'e')]
    assert containers.top_level([('a',), ()]) == [()]


def test_containers_that_root_from_brings_together_are_refused_where_they_land():
    remap = sp.parse_remap('b', None, 'a')
    assert refusal({'x': one({'a/x': {}}), 'y': one({'b/x': {}})}, remap) == REFUSED % (
        "x's cgroup /a/x and y's cgroup /b/x are both placed at /b/x")
    assert refusal({'x': one({'a': {}}), 'y': one({'b/x': {}})}, remap) == REFUSED % (
        "y's cgroup /b/x lies inside x's cgroup /a (placed at /b)")
    # a root that is prepended keeps apart what is apart
    assert containers.load_specs({'x': one({'a/x': {}}), 'y': one({'b/x': {}})}, sp.parse_remap('b', None, None))


def test_a_bad_container_is_named_and_a_bad_cgroup_keeps_its_own_message():
    assert refusal({}).startswith('Invalid specs: expected a non-empty mapping of container name')
    assert refusal({'ct1': 5}) == 'Invalid spec of container ct1: expected a mapping with "version" and "cgroups".'
    assert refusal({'ct1': {'version': 2, 'cgroups': {'a': {}}}}) == \
        'Invalid spec of container ct1: version 2 is not supported; this collection reads version 1.'
    assert refusal({'ct1': {'cgroups': {}}}) == \
        'Invalid spec of container ct1: "cgroups" must be a non-empty mapping of cgroup paths.'
    assert refusal({'': CT1}) == "Invalid specs: container name '': expected a non-empty string."
    assert refusal({'ct1': one({'ct1': {'pids.max': 'lots'}})}) == \
        "Invalid spec: cgroup 'ct1', property 'pids.max': expected a whole number or max, got 'lots'."


def test_specs_is_exclusive_with_spec_src_and_root_controllers():
    for extra in ({'spec': CT1}, {'src': '/nonexistent.json'}):
        with pytest.raises(SpecError, match='mutually exclusive; give one of spec, src and specs'):
            restore.read_request(dict(extra, specs={'ct1': CT1}))
    with pytest.raises(SpecError, match='root_controllers restores one container through its own view'):
        restore.read_request({'specs': {'ct1': CT1}, 'root_controllers': ['memory']})
    spec, _options = restore.read_request({'specs': {'ct1': CT1}})
    assert [sp.show_path(cg.path) for cg in spec.cgroups] == ['ct1', 'ct1/app']
