"""Runs inside a sandbox: the engine's phases on a spec given as a JSON file,
timed one by one: read the spec, observe + plan (the first restore), apply,
then observe + plan again (what a no-op re-run does). With --trace, the
peak of Python's heap in each phase (tracemalloc), which slows the run, so
timings and memory come from separate runs. Prints JSON."""

import json
import resource
import sys
import time
import tracemalloc

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import restore


def main():
    trace = '--trace' in sys.argv
    with open(sys.argv[1]) as handle:
        spec_data = json.load(handle)
    out = {}
    if trace:
        tracemalloc.start()

    def phase(name, func):
        if trace:
            tracemalloc.reset_peak()
        began = time.perf_counter()
        value = func()
        out[name + '_s'] = round(time.perf_counter() - began, 4)
        if trace:
            out[name + '_peak_mb'] = round(tracemalloc.get_traced_memory()[1] / 1048576.0, 2)
        return value

    params = {'spec': spec_data, 'mode': 'strict'}
    spec, options = phase('parse', lambda: restore.read_request(params))
    host = restore._Host(options.mountpoint)  # pylint: disable=protected-access
    try:
        _t, _o, plan = phase('plan', lambda: restore._observe_and_plan(host, spec, options))  # pylint: disable=protected-access
        out['actions'] = len(plan.actions)
        report = phase('apply', lambda: restore._apply(host, spec, options, plan, lambda m: None))  # pylint: disable=protected-access
        out['created'], out['writes'] = len(report['created']), len(report['writes'])
        _t, _o, again = phase('replan', lambda: restore._observe_and_plan(host, spec, options))  # pylint: disable=protected-access
        out['replan_actions'] = len(again.actions)
    finally:
        host.close()
    out['maxrss_mb'] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    print(json.dumps(out))


if __name__ == '__main__':
    main()
