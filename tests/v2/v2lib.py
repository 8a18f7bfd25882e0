"""Helpers of the tests in tests/v2: the unified hierarchy is named ''."""

from engine_run import run_engine
from modrun import read


def r(sandbox, *parts):
    """A file of the sandbox's unified hierarchy, read from outside."""
    return read(sandbox, '', *parts)


def run(sandbox, check_mode=False, **params):
    """The engine in one process per call: under emulation a module process
    (Python and Ansible's imports) costs seconds. The module itself is tested
    on the v1 host; the core below it is the same."""
    return run_engine(sandbox, {'kind': 'call', 'params': params, 'check_mode': check_mode})
