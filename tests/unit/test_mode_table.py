"""policy.MODES is the README's mode table: each field agrees with the row
that says it, for every mode, so the table in the code and the one a user
reads cannot drift apart. (tests/kernel/test_modes.py shows each row on the
real kernel.)"""

import os

import pytest

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import policy
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import SpecError

README = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'README.md')


def readme_table():
    """{situation: {mode: cell}} of the README's table of the three modes."""
    with open(README) as handle:
        lines = handle.read().split('## The three modes', 1)[1].splitlines()
    rows = [line for line in lines if line.startswith('|')]
    header = [cell.strip(' `').split('`')[0] for cell in rows[0].strip('|').split('|')]
    table = {}
    for row in rows[2:]:
        cells = [cell.strip() for cell in row.strip('|').split('|')]
        table[cells[0]] = dict(zip(header[1:], cells[1:]))
    return table


# field -> (README row, what the cell says when the field is true, when it is false)
ROWS = {
    'may_mount': ('a needed hierarchy is not mounted', 'mount it', 'fail: premount first'),
    'may_create_top': ('a top-level cgroup is missing', 'create it', 'fail: premount first'),
    'adopts': ('a cgroup of the spec already exists', 'adopt it', 'conflict: fail'),
    'goes_on': ('a write fails', 'go on with the rest', 'roll back'),
}


@pytest.mark.parametrize('field', sorted(ROWS))
@pytest.mark.parametrize('name', policy.MODE_NAMES)
def test_each_field_says_what_the_readme_row_says(field, name):
    row, when_true, when_false = ROWS[field]
    cell = readme_table()[row][name]
    value = getattr(policy.mode(name), field)
    assert cell.startswith(when_true if value else when_false), (name, field, value, cell)


def test_the_ancestors_row_follows_the_top_level_row_and_rolls_back_is_the_opposite_of_goes_on():
    table = readme_table()
    for name in policy.MODE_NAMES:
        rules = policy.mode(name)
        ancestors = table['an ancestor above a top-level cgroup is missing'][name]
        assert ancestors.startswith('create it') == rules.may_create_top, (name, ancestors)
        assert rules.rolls_back is not rules.goes_on


def test_prune_is_refused_only_where_nothing_is_adopted():
    for name in policy.MODE_NAMES:
        rules = policy.mode(name)
        assert rules.may_prune == rules.adopts
        if rules.may_prune:
            policy.check_prune(rules)
        else:
            with pytest.raises(SpecError, match='nothing to prune'):
                policy.check_prune(rules)


def test_the_table_has_exactly_the_three_modes_of_the_readme():
    assert set(policy.MODES) == set(policy.MODE_NAMES) == set(readme_table()['a write fails'])
    assert policy.DEFAULT_MODE == 'strict' and '`strict` (default)' in open(README).read()
