# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options that the modules which run criu share (criu.CRIU_OPTIONS)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r'''
options:
  criu:
    description:
      - The criu binary, a name looked up in C(PATH) or a path.
    type: str
    default: criu
  mountpoint:
    description:
      - Where the cgroup hierarchies are mounted.
    type: path
    default: /sys/fs/cgroup
'''
