# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Domain exceptions. The module file turns each into one fail_json message."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class CgroupError(Exception):
    """Base class: the message is complete and meant for the operator."""


class SpecError(CgroupError):
    """The spec or an argument is invalid. Nothing was written."""


class Refusal(CgroupError):
    """The plan cannot be carried out in this mode. Nothing was written."""


class LockTimeout(CgroupError):
    """Another restore held the host lock for too long. Nothing was written."""


class ApplyError(CgroupError):
    """A write failed. Carries what was done and undone for the result."""

    def __init__(self, message, report=None):
        super(ApplyError, self).__init__(message)
        self.report = report or {}
