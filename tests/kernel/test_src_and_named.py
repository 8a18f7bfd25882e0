"""Spec files on the target, named hierarchies, and the yaml-less target."""

import json
import os
import subprocess
import sys

import yaml

from modrun import COLLECTIONS, read, run, snapshot

SPEC = {'version': 1, 'cgroups': {'ct': {'pids.max': 42, 'memory.limit_in_bytes': '32M'}}}


def test_src_json_and_yaml(sandbox):
    json_path = os.path.join(sandbox.work, 'spec.json')
    with open(json_path, 'w') as handle:
        json.dump(SPEC, handle)
    result = run(sandbox, src=json_path)
    assert result['changed'] and read(sandbox, 'pids', 'ct', 'pids.max') == '42', result
    yaml_path = os.path.join(sandbox.work, 'spec.yml')
    with open(yaml_path, 'w') as handle:
        yaml.safe_dump(SPEC, handle)
    assert run(sandbox, src=yaml_path)['changed'] is False


def test_src_problems_are_clear(sandbox):
    result = run(sandbox, src=os.path.join(sandbox.work, 'missing.yml'))
    assert result['failed'] and 'Failed to read spec file' in result['msg'], result
    bad = os.path.join(sandbox.work, 'bad.json')
    with open(bad, 'w') as handle:
        handle.write('{"version": 1, "cgroups": ')
    result = run(sandbox, src=bad)
    assert result['failed'] and 'as JSON' in result['msg'], result
    result = run(sandbox, spec=SPEC, src=bad)
    assert result['failed'] and 'mutually exclusive' in result['msg'], result
    before = snapshot(sandbox)
    result = run(sandbox, mode='opport')
    assert result['failed'] and 'one of the following is required: spec, src' in result['msg'], result
    assert snapshot(sandbox) == before


def test_yaml_spec_without_pyyaml_says_so(tmp_path):
    path = tmp_path / 'spec.yml'
    path.write_text('version: 1\ncgroups:\n  ct: {pids.max: 1}\n')
    code = ('import sys; sys.modules["yaml"] = None\n'
            'from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import spec\n'
            'from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import SpecError\n'
            'try:\n    spec.read_spec_file(sys.argv[1])\nexcept SpecError as exc:\n    print(exc)\n')
    out = subprocess.run([sys.executable, '-c', code, str(path)], env=dict(os.environ, PYTHONPATH=COLLECTIONS),
                         stdout=subprocess.PIPE, universal_newlines=True, check=False).stdout
    assert 'PyYAML is not installed' in out and 'JSON' in out, out


def test_named_hierarchy(sandbox):
    spec = {'version': 1, 'cgroups': {'ct': {'controllers': ['name=systemd', 'pids'],
                                             'properties': {'notify_on_release': 1, 'pids.max': 3}}}}
    result = run(sandbox, spec=spec)
    assert result['changed'] and not result.get('failed'), result
    assert read(sandbox, 'systemd', 'ct', 'notify_on_release') == '1'
    assert read(sandbox, 'pids', 'ct', 'notify_on_release') == '1'
    assert run(sandbox, spec=spec)['changed'] is False
