"""Our engine in-process: restore.run(params) on a spec given as a JSON file,
as the module would call it, without Ansible around it. Runs inside a
sandbox; prints how many cgroups were created and properties written."""

import json
import sys

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import restore


def main():
    with open(sys.argv[1]) as handle:
        spec = json.load(handle)
    result = restore.run({'spec': spec, 'mode': 'strict'})
    print(json.dumps({'changed': result['changed'], 'created': len(result.get('created', [])),
                      'writes': len(result.get('writes', []))}))


if __name__ == '__main__':
    main()
