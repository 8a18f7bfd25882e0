"""Start tests/lib/engine.py inside a sandbox and return its JSON summary."""

import json
import os
import sys
import tempfile

from modrun import module_env

ENGINE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'engine.py')


def run_engine(sandbox, job, only=None, extra=''):
    fd, path = tempfile.mkstemp(prefix='job-', suffix='.json', dir=sandbox.work)
    with os.fdopen(fd, 'w') as handle:
        json.dump(job, handle)
    proc = sandbox.run([sys.executable, ENGINE, path], only=only, extra=extra, env=module_env())
    assert proc.returncode == 0 and 'Traceback' not in proc.stderr, proc.stdout + proc.stderr
    return json.loads(proc.stdout)
