"""The floor: a plain Python loop of mkdir and write, with no checks at all.
Runs inside a sandbox on the spec given as a JSON file; parents first. A
re-run (--rerun) does the same, tolerating the directories that exist."""

import json
import os
import sys

ROOT = '/sys/fs/cgroup'


def main():
    rerun = '--rerun' in sys.argv
    with open(sys.argv[1]) as handle:
        spec = json.load(handle)
    items = sorted(spec['cgroups'].items(), key=lambda item: (item[0].count('/'), item[0]))
    for path, entry in items:
        for ctrl in entry['controllers']:
            try:
                os.mkdir(os.path.join(ROOT, ctrl, path))
            except FileExistsError:
                if not rerun:
                    raise
        for name, value in entry['properties'].items():
            with open(os.path.join(ROOT, name.split('.', 1)[0], path, name), 'w') as handle:
                handle.write(str(value))


if __name__ == '__main__':
    main()
