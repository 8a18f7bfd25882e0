"""ansible-playbook on this machine against a VM over SSH, on request of a
script that runs inside the VM.

A script in the VM (tests/v2vm/criu_roles_in_vm.py) drives a scenario: it
starts processes, changes cgroups and reads the kernel's files itself, and
for each play it asks this machine to run ansible-playbook against the VM,
as an operator's controller would. Under emulation that is three times
faster than ansible-playbook inside the VM (a 2-task play: 12 to 17 s here,
45 s there), because the controller's own Python work runs at full speed.

The two talk through the directory shared with the VM (V2VM_SHARE):

    play-N.json          {"playbook": PATH, "variables": {...}}  (the VM writes it)
    play-N.result.json   {"rc", "ok", "changed", "failed", "messages",
                          "changed_tasks", "seconds"}           (this machine)

Each file is written under another name and renamed, so a reader never sees
half of one.

    server = PlaybookServer(share, vmdir, port)   # vm_host.make_ssh_files made vmdir
    server.start()
    ... v2vm.run([... 'sh', '-c', vm_host.guest_sshd(vmdir, foreground=False) + ' && exec ...'],
                 share=share, ssh_port=port)
    server.stop()

In the VM: `request(name, variables)` (this module, imported there too).
"""

import glob
import json
import os
import re
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, 'extensions', 'molecule'))
import vm_host  # noqa: E402  pylint: disable=wrong-import-position

ANSIBLE_PLAYBOOK = os.path.join(REPO, '.venv', 'bin', 'ansible-playbook')
COLLECTIONS = os.path.join(REPO, 'build', 'collections')
# The inventory's names for the VM: one host, or, for a migration, the
# source and the destination (the same kernel, two names).
HOSTS = ('vm', 'destination')
# The guest's sshd starts with the script; under emulation it may take a while.
LOGIN_TIMEOUT = 300
# How long the script in the VM waits for one play's result.
PLAY_TIMEOUT = 1800
POLL_SECONDS = 0.3
# play-NAME.json, NAME with no dot (beside it: .result.json, .vars.json).
REQUEST = re.compile(r'^play-[^.]+\.json$')
RECAP = re.compile(r'^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', re.M)
TASK_RESULT = re.compile(r'^(changed|fatal|failed): \[(%s)\]' % '|'.join(HOSTS))


def _write_json(path, data):
    with open(path + '.tmp', 'w') as handle:
        json.dump(data, handle)
    os.rename(path + '.tmp', path)


def summarize(returncode, output, seconds):
    """{rc, ok, changed, failed, messages, changed_tasks, seconds} of a run,
    from the default callback's recap (summed over the hosts) and task lines."""
    task, changed_tasks, messages = None, [], []
    for line in output.splitlines():
        if line.startswith('TASK ['):
            task = line[len('TASK ['):].split(']')[0]
            continue
        result = TASK_RESULT.match(line)
        if result and result.group(1) == 'changed':
            changed_tasks.append(task)
        elif result or '[ERROR]' in line:
            messages.append('%s: %s' % (task, line[:3000]))
    recaps = [tuple(int(n) for n in match[1:]) for match in RECAP.findall(output) if match[0] in HOSTS]
    if recaps:
        ok, changed, unreachable, failed = (sum(column) for column in zip(*recaps))
    else:
        ok, changed, unreachable, failed = 0, None, 0, 1
    return {'rc': returncode, 'ok': ok, 'changed': changed, 'failed': failed + unreachable,
            'messages': messages, 'changed_tasks': changed_tasks, 'seconds': seconds,
            'tail': output[-4000:] if returncode else ''}


class PlaybookServer(threading.Thread):
    """Runs each play the VM asks for, one at a time, until stop()."""

    def __init__(self, share, vmdir, port):
        super().__init__(daemon=True)
        self.share, self.vmdir, self.port = share, vmdir, port
        self.inventory = os.path.join(share, 'inventory.json')
        hosts = {name: vm_host.inventory_vars(vmdir, port) for name in HOSTS}
        _write_json(self.inventory, {'all': {'hosts': hosts}})
        self._stopping = threading.Event()
        self._logged_in = False
        self.error = None

    def stop(self):
        self._stopping.set()
        self.join(timeout=60)

    def run(self):
        try:
            while not self._stopping.is_set():
                for request in sorted(self._pending()):
                    self._serve(request)
                time.sleep(POLL_SECONDS)
        except Exception as exc:  # the fixture reports it beside the VM's output
            self.error = '%s: %s' % (type(exc).__name__, exc)

    def _pending(self):
        for path in glob.glob(os.path.join(self.share, 'play-*.json')):
            if REQUEST.match(os.path.basename(path)) and not os.path.exists(self._result_path(path)):
                yield path

    @staticmethod
    def _result_path(request):
        return request[:-len('.json')] + '.result.json'

    def _serve(self, request):
        """Writes the request's result, a failed one if the play could not run,
        so that the script in the VM never waits in vain."""
        try:
            with open(request) as handle:
                asked = json.load(handle)
            if not self._logged_in:
                self._logged_in = vm_host.wait_for_login(self.vmdir, self.port, LOGIN_TIMEOUT)
            if not self._logged_in:
                result = summarize(255, 'vm_playbooks: no ssh login to the VM after %ds' % LOGIN_TIMEOUT, 0)
            else:
                result = self._play(request, asked)
        except (OSError, ValueError, KeyError) as exc:
            result = summarize(255, 'vm_playbooks: %s: %s' % (type(exc).__name__, exc), 0)
        _write_json(self._result_path(request), result)

    def _play(self, request, asked):
        variables = request[:-len('.json')] + '.vars.json'
        _write_json(variables, asked['variables'])
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1',
                   ANSIBLE_FORCE_COLOR='0', ANSIBLE_RETRY_FILES_ENABLED='0',
                   ANSIBLE_LOCAL_TEMP=os.path.join(self.share, 'ansible-local'))
        begin = time.monotonic()
        proc = subprocess.run([ANSIBLE_PLAYBOOK, '-i', self.inventory, asked['playbook'], '-e', '@' + variables],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, env=env, cwd=self.share, check=False)
        return summarize(proc.returncode, proc.stdout, round(time.monotonic() - begin, 1))


def request(name, playbook, variables, share=None, timeout=PLAY_TIMEOUT):
    """In the VM: have this machine run PLAYBOOK with VARIABLES against the
    VM; wait for and return its summary (see summarize)."""
    share = share or os.environ['V2VM_SHARE']
    path = os.path.join(share, 'play-%s.json' % name)
    result = path[:-len('.json')] + '.result.json'
    _write_json(path, {'playbook': playbook, 'variables': variables})
    deadline = time.monotonic() + timeout
    while not os.path.exists(result):
        if time.monotonic() > deadline:
            return summarize(255, 'vm_playbooks: no result for %s after %ds' % (name, timeout), timeout)
        time.sleep(POLL_SECONDS)
    with open(result) as handle:
        return json.load(handle)
