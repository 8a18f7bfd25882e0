# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet playbook's summary, one line per host, built from each host's
registered cgroup_restore result.

It is Python, not Jinja, so that each decision (what a line says, when the
run ends and the summary is due) is in one place that tests can read, and so
that the playbook needs no per-host task to record a line: the summary task
runs once per batch and reads every host's result from hostvars.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: fleet_summary
short_description: The fleet playbook's summary lines, when the run ends after this batch
version_added: 0.1.0
description:
  - >-
    Builds the C(checkpoint_restore.cgroups.restore_limits) playbook's summary, C(HOST: LINE) for
    every host of the play, from each host's registered M(checkpoint_restore.cgroups.cgroup_restore)
    result in C(hostvars).
  - A line reads C(ok, N cgroups created, M properties changed, K failures) and, for a host whose
    restore failed or that could not be reached, C(FAILED, ...) or C(UNREACHABLE, ...) with the
    error after a colon. A host whose batch never ran reads C(not run) and why.
  - Returns an empty list while the run goes on after this batch, so that the summary is printed
    once, at the end. The run ends after the last batch, after a batch in which every host failed,
    and after a batch whose share of failed hosts is above O(max_fail_percentage).
options:
  _input:
    description: The C(hostvars) of the play.
    type: dict
    required: true
  hosts:
    description: Every host of the play, in order (C(ansible_play_hosts_all)).
    type: list
    elements: str
    required: true
  batch:
    description: The hosts of this batch (C(ansible_play_batch)).
    type: list
    elements: str
    required: true
  max_fail_percentage:
    description: The play's C(max_fail_percentage); the run stops after a batch with a larger share of failed hosts.
    type: float
    default: 100
  check_mode:
    description: Whether the play runs in check mode (C(ansible_check_mode)); lines then say C(would be created).
    type: bool
    default: false
  result:
    description: The name of the registered variable that holds each host's result.
    type: str
    default: __cgroup_fleet_result
'''

EXAMPLES = r'''
- name: Summary, one line per host
  ansible.builtin.debug:
    msg: "{{ __summary }}"
  run_once: true
  when: __summary | length > 0
  vars:
    __summary: >-
      {{ hostvars | checkpoint_restore.cgroups.fleet_summary(ansible_play_hosts_all, ansible_play_batch,
         max_fail_percentage=50, check_mode=ansible_check_mode) }}
'''

RETURN = r'''
_value:
  description: "C(HOST: LINE) for every host of the play, in the play's order; empty while the run goes on."
  type: list
  elements: str
'''

NOT_RUN = 'not run: the run stopped before its batch'
EMPTY = 'ok, no containers (cgroup_fleet_containers is empty)'


def host_failed(result):
    """A restore that failed, or a host that could not be reached."""
    return bool(result.get('failed') or result.get('unreachable'))


def host_line(result, check_mode=False):
    """One host's line, from its registered result."""
    if result.get('skipped'):
        return EMPTY
    verb = 'would be ' if check_mode else ''
    failures = len(result.get('failed_items') or ()) or (1 if host_failed(result) else 0)
    status = 'UNREACHABLE' if result.get('unreachable') else 'FAILED' if result.get('failed') else 'ok'
    created = len(set(entry['cgroup'] for entry in result.get('created') or ()))
    line = '%s, %d cgroups %screated, %d properties %schanged, %d %s' % (
        status, created, verb, len(result.get('writes') or ()), verb, failures,
        'failure' if failures == 1 else 'failures')
    if host_failed(result):
        line += ': ' + str(result.get('msg') or '').strip()
    return line


def run_ends(results, hosts, batch, max_fail_percentage):
    """Whether no batch follows this one: it was the last, every host of it
    failed, or more than max_fail_percentage of it did (Ansible's own rule)."""
    failed = sum(1 for name in batch if host_failed(results.get(name) or {}))
    done = sum(1 for name in hosts if name in results)
    return (done == len(hosts) or failed == len(batch)
            or failed * 100.0 / len(batch) > float(max_fail_percentage))


def fleet_summary(hostvars, hosts, batch, max_fail_percentage=100, check_mode=False,
                  result='__cgroup_fleet_result'):
    results = {}
    for name in hosts:
        value = hostvars[name].get(result)
        if value is not None:
            results[name] = value
    if not run_ends(results, hosts, batch, max_fail_percentage):
        return []
    return ['%s: %s' % (name, host_line(results[name], check_mode) if name in results else NOT_RUN)
            for name in hosts]


class FilterModule(object):
    def filters(self):
        return {'fleet_summary': fleet_summary}
