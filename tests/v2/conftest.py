"""tests/v2 run inside the VM (tests/v2vm), on a pure cgroup v2 kernel."""

import pytest


@pytest.fixture(autouse=True)
def _pure_v2(sandbox):
    assert '' in sandbox.hierarchies, 'not a pure cgroup v2 host: run these in the VM (tests/v2vm)'
