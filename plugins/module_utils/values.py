# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Value kinds of cgroup files: parse a spec value, read the kernel's text,
compare the two the way the kernel means them, and render text to write.

Pure functions only; the page size is passed in by the caller.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

UNLIMITED = 'max'
# Anything at or above 4 EiB is the kernel's "no limit" (v1 reads back
# 9223372036854771712 for -1, which depends on the page size).
_UNLIMITED_FLOOR = 1 << 62
_SUFFIXES = {'': 1, 'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30, 't': 1 << 40, 'p': 1 << 50, 'e': 1 << 60}
_SIZE_RE = re.compile(r'^([0-9]+)\s*([kmgtpe]?)(i?b)?$', re.IGNORECASE)
_INT_RE = re.compile(r'^-?[0-9]+$')


class Comparisons:
    """Whether the kernel's texts already mean the spec's values, the way the
    kernel means them (Kind.same). Each (file, text, wanted value) is decided
    once: a tree shows the same few texts again and again. One is made per
    observe and per plan. kind_of: a file name -> its Kind."""

    def __init__(self, kind_of, page_size):
        self._kind_of = kind_of
        self.page_size = page_size
        self._seen = {}

    def compare(self, name, wanted, raw):
        """(same, current): whether the text raw of file name means wanted,
        and its value (canonical). ValueError when the text does not parse."""
        key = (name, raw, wanted)
        try:
            found = self._seen.get(key)
        except TypeError:  # an unhashable value: compared, not kept
            key = found = None
        if found is None:
            kind = self._kind_of(name)
            current = kind.read(raw)
            found = (kind.same(wanted, current, self.page_size), current)
            if key is not None:
                self._seen[key] = found
        return found

    def unchanged(self, name, wanted, raw):
        """True when the text raw already means wanted; False when it
        differs, the file is missing (raw None) or its text does not parse."""
        if raw is None:
            return False
        try:
            found = self._seen.get((name, raw, wanted))  # the usual answer: one lookup
        except TypeError:
            found = None
        if found is None:
            try:
                found = self.compare(name, wanted, raw)
            except ValueError:
                return False
        return found[0]


def _scalar_text(value):
    """Text of a scalar spec value; lists and mappings are not scalars."""
    if isinstance(value, bool):
        return '1' if value else '0'
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float):
            if value != int(value):
                raise ValueError('expected a whole number, got %r' % (value,))
            value = int(value)
        return str(value)
    if isinstance(value, str):
        if '\x00' in value:
            raise ValueError('the value contains a NUL byte')
        return value.strip()
    raise ValueError('expected a number or a string, got %s' % type(value).__name__)


def _single_line(text):
    if '\n' in text or '\r' in text:
        raise ValueError('expected a single line, got a value with a line break')
    return text


class Kind:
    """Default kind: text compared as text, or as integers when both are."""

    name = 'text'
    multi_line = False
    # The kernel shows the value as one line, from a single seq_file record:
    # one read() returns it whole (see cgroupfs._read_all).
    one_line = False

    def parse(self, value):
        if isinstance(value, (list, tuple)):
            return tuple(_single_line(_scalar_text(v)) for v in value)
        return _single_line(_scalar_text(value))

    def read(self, raw):
        text = raw.strip()
        return tuple(text.splitlines()) if '\n' in text else text

    def same(self, desired, current, page_size=4096):
        if isinstance(desired, str) and isinstance(current, str):
            if _INT_RE.match(desired) and _INT_RE.match(current):
                return int(desired) == int(current)
        return desired == current

    def expected(self, canonical, page_size=4096):
        """What the kernel will read back after writing this value."""
        return canonical

    def render(self, canonical):
        """Text for each write(); one write per line."""
        if isinstance(canonical, tuple):
            return list(canonical)
        return [canonical]

    def show(self, canonical):
        if isinstance(canonical, tuple):
            return '\n'.join(canonical)
        return str(canonical)


class MemorySize(Kind):
    """Byte sizes with K/M/G suffixes, rounded down by the kernel."""

    name = 'memory size'
    one_line = True

    def __init__(self, granularity=None, unlimited_text='-1'):
        self.granularity = granularity  # None: the page size
        self.unlimited_text = unlimited_text

    def parse(self, value):
        text = _scalar_text(value).lower()
        if text in ('-1', 'max', 'unlimited', 'infinity'):
            return UNLIMITED
        match = _SIZE_RE.match(text)
        if not match:
            raise ValueError('expected a size in bytes (suffix K, M, G, T), -1 or max, got %r' % (value,))
        size = int(match.group(1)) * _SUFFIXES[match.group(2)]
        return UNLIMITED if size >= _UNLIMITED_FLOOR else size

    def read(self, raw):
        text = raw.strip()
        if text == 'max':
            return UNLIMITED
        size = int(text)
        return UNLIMITED if size >= _UNLIMITED_FLOOR or size < 0 else size

    def same(self, desired, current, page_size=4096):
        if desired == UNLIMITED or current == UNLIMITED:
            return desired == current
        return self.expected(desired, page_size) == self.expected(current, page_size)

    def expected(self, canonical, page_size=4096):
        if canonical == UNLIMITED:
            return canonical
        step = self.granularity or page_size
        return canonical // step * step

    def render(self, canonical):
        return [self.unlimited_text if canonical == UNLIMITED else str(canonical)]


class Integer(Kind):
    """Whole numbers, optionally with an unlimited value and kernel clamping."""

    name = 'integer'
    one_line = True

    def __init__(self, minimum=None, maximum=None, unlimited_text=None, clamp=False):
        self.minimum = minimum
        self.maximum = maximum
        self.unlimited_text = unlimited_text  # '-1' or 'max' when the file has one
        self.clamp = clamp

    def parse(self, value):
        text = _scalar_text(value).lower()
        if self.unlimited_text is not None and text in ('-1', 'max', 'unlimited'):
            return UNLIMITED
        if not _INT_RE.match(text):
            raise ValueError('expected a whole number%s, got %r'
                             % (' or max' if self.unlimited_text else '', value))
        number = int(text)
        if not self.clamp:
            if self.minimum is not None and number < self.minimum:
                raise ValueError('%d is below the minimum %d' % (number, self.minimum))
            if self.maximum is not None and number > self.maximum:
                raise ValueError('%d is above the maximum %d' % (number, self.maximum))
        elif number < 0:
            raise ValueError('expected a positive number, got %d' % number)
        return number

    def read(self, raw):
        text = raw.strip()
        if text == 'max' or (self.unlimited_text == '-1' and text == '-1'):
            return UNLIMITED
        return int(text)

    def _clamped(self, number):
        if number == UNLIMITED or not self.clamp:
            return number
        if self.minimum is not None:
            number = max(self.minimum, number)
        if self.maximum is not None:
            number = min(self.maximum, number)
        return number

    def same(self, desired, current, page_size=4096):
        return self._clamped(desired) == current

    def expected(self, canonical, page_size=4096):
        return self._clamped(canonical)

    def render(self, canonical):
        if canonical == UNLIMITED:
            return [self.unlimited_text]
        return [str(canonical)]


class Flag(Integer):
    """0 or 1; booleans accepted."""

    name = 'flag'

    def __init__(self):
        super(Flag, self).__init__(minimum=0, maximum=1)


class HexOrInt(Integer):
    """net_cls.classid: written as 0xAAAABBBB or decimal, read as decimal."""

    name = 'class id'

    def parse(self, value):
        text = _scalar_text(value).lower()
        try:
            number = int(text, 16) if text.startswith('0x') else int(text)
        except ValueError:
            raise ValueError('expected a class id such as 0x100001, got %r' % (value,))
        if not 0 <= number <= 0xffffffff:
            raise ValueError('class id %r is out of range' % (value,))
        return number


def parse_id_list(text):
    """'0-3,5' -> frozenset({0, 1, 2, 3, 5}); '' -> frozenset()."""
    ids = set()
    for part in text.replace(' ', '').split(','):
        if not part:
            continue
        low, sep, high = part.partition('-')
        if not low.isdigit() or (sep and not high.isdigit()):
            raise ValueError('expected a list such as 0-3,5, got %r' % (text,))
        low, high = int(low), int(high) if sep else int(low)
        if high < low or high > 65535:
            raise ValueError('range %r is not valid' % (part,))
        ids.update(range(low, high + 1))
    return frozenset(ids)


def format_id_list(ids):
    """frozenset({0, 1, 2, 3, 5}) -> '0-3,5', as the kernel prints it."""
    parts = []
    start = prev = None
    for n in sorted(ids):
        if prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            parts.append(str(start) if start == prev else '%d-%d' % (start, prev))
        start = prev = n
    if start is not None:
        parts.append(str(start) if start == prev else '%d-%d' % (start, prev))
    return ','.join(parts)


class IdList(Kind):
    """cpuset lists: 0-3, 0,1,2,3 and 0-1,2-3 are the same set."""

    name = 'cpu or node list'
    one_line = True

    def parse(self, value):
        if isinstance(value, (list, tuple)):
            value = ','.join(_scalar_text(v) for v in value)
        return parse_id_list(_single_line(_scalar_text(value)))

    def read(self, raw):
        return parse_id_list(raw.strip())

    def same(self, desired, current, page_size=4096):
        return desired == current

    def render(self, canonical):
        # An empty list is written as a newline: the kernel refuses an empty write().
        return [format_id_list(canonical) or '\n']

    def show(self, canonical):
        return format_id_list(canonical)


_DEVICE_RE = re.compile(r'^([abc])\s+(\*|[0-9]+):(\*|[0-9]+)\s+([rwm]{1,3})$')


def _device_entry(line):
    line = ' '.join(line.split())
    if line == 'a':
        return 'a *:* rwm'
    match = _DEVICE_RE.match(line)
    if not match:
        raise ValueError('expected a device rule such as "c 1:3 rwm", got %r' % (line,))
    access = ''.join(c for c in 'rwm' if c in match.group(4))
    return '%s %s:%s %s' % (match.group(1), match.group(2), match.group(3), access)


class DeviceList(Kind):
    """devices.list: the rules in their order (the kernel lists them in the
    order they were allowed), compared as a set, restored as deny-all then
    one allow per rule in that order."""

    name = 'device whitelist'
    multi_line = True

    def parse(self, value):
        if isinstance(value, str):
            value = value.splitlines()
        if not isinstance(value, (list, tuple)):
            raise ValueError('expected a list of device rules')
        return _in_order(_device_entry(_scalar_text(v)) for v in value if _scalar_text(v))

    def read(self, raw):
        return _in_order(_device_entry(line) for line in raw.splitlines() if line.strip())

    def same(self, desired, current, page_size=4096):
        return frozenset(desired) == frozenset(current)

    def writes(self, canonical):
        """(file, text) pairs: the kernel needs deny-all first, then each rule."""
        return [('devices.deny', 'a')] + [('devices.allow', rule) for rule in canonical]

    def render(self, canonical):
        return list(canonical)

    def show(self, canonical):
        return ', '.join(canonical)


def _in_order(rules):
    """A tuple of the rules, each once, in their first place."""
    seen = set()
    return tuple(rule for rule in rules if not (rule in seen or seen.add(rule)))


class KeyedLines(Kind):
    """Files of 'key value' lines (net_prio.ifpriomap, blkio throttles, io.max):
    each desired key must have its value; other keys are left alone."""

    name = 'keyed lines'
    multi_line = True
    independent_lines = True

    def parse(self, value):
        if isinstance(value, dict):
            items = [(str(k), _scalar_text(v)) for k, v in value.items()]
        else:
            if isinstance(value, str):
                value = value.splitlines()
            if not isinstance(value, (list, tuple)):
                raise ValueError('expected lines of "key value"')
            items = []
            for line in value:
                key, _sep, rest = _scalar_text(line).partition(' ')
                if not key or not rest.strip():
                    raise ValueError('expected "key value", got %r' % (line,))
                items.append((key, rest.strip()))
        for key, val in items:
            _single_line(key)
            _single_line(val)
        return tuple(sorted(items))

    def read(self, raw):
        items = []
        for line in raw.splitlines():
            key, _sep, rest = line.strip().partition(' ')
            if key:
                items.append((key, rest.strip()))
        return tuple(sorted(items))

    def _line_same(self, key, val, have):
        return key in have and Kind().same(val, have[key])

    def same(self, desired, current, page_size=4096):
        have = dict(current)
        return all(self._line_same(key, val, have) for key, val in desired)

    def delta(self, target, current):
        """Only the lines whose key is missing or differs: one write() each."""
        have = dict(current or ())
        return ['%s %s' % (key, val) for key, val in target if not self._line_same(key, val, have)]

    def render(self, canonical):
        return ['%s %s' % item for item in canonical]

    def show(self, canonical):
        return ', '.join('%s %s' % item for item in canonical)


class IoWeight(KeyedLines):
    """cgroup v2 io.weight and io.bfq.weight: 'default N' and 'MAJ:MIN N'
    lines. 'MAJ:MIN default' drops a device's own weight, and the kernel
    then shows no line for it."""

    name = 'io weight lines'

    def _line_same(self, key, val, have):
        if val == 'default' and key != 'default':
            return have.get(key, 'default') == 'default'
        return super(IoWeight, self)._line_same(key, val, have)


class OomControl(Kind):
    """memory.oom_control: written as 0/1, read as 'oom_kill_disable N' lines."""

    name = 'oom_kill_disable flag'

    def parse(self, value):
        return Flag().parse(value)

    def read(self, raw):
        for line in raw.splitlines():
            key, _sep, val = line.partition(' ')
            if key == 'oom_kill_disable':
                return int(val)
        return int(raw.strip())

    def same(self, desired, current, page_size=4096):
        return desired == current

    def render(self, canonical):
        return [str(canonical)]


class FreezerState(Kind):
    name = 'freezer state'
    one_line = True

    def parse(self, value):
        text = _scalar_text(value).upper()
        if text not in ('FROZEN', 'THAWED'):
            raise ValueError('expected FROZEN or THAWED, got %r' % (value,))
        return text

    def read(self, raw):
        return raw.strip().upper()

    def same(self, desired, current, page_size=4096):
        return desired == current

    def render(self, canonical):
        return [canonical]


class CpuMax(Kind):
    """cgroup v2 cpu.max: '$QUOTA $PERIOD', quota 'max' for no limit. A spec
    may give the quota alone; the period is then left as it is."""

    name = 'cpu.max value'
    one_line = True

    def parse(self, value):
        if isinstance(value, (list, tuple)) and len(value) in (1, 2):
            words = [_scalar_text(v) for v in value]
        else:
            words = _single_line(_scalar_text(value)).split()
        if len(words) not in (1, 2):
            raise ValueError('expected "QUOTA PERIOD" such as "50000 100000" or "max 100000", got %r' % (value,))
        quota = UNLIMITED if words[0] in ('max', '-1') else words[0]
        if quota != UNLIMITED:
            if not quota.isdigit() or int(quota) < 1000:
                raise ValueError('the quota must be max or at least 1000 microseconds, got %r' % (words[0],))
            quota = int(quota)
        period = None
        if len(words) == 2:
            if not words[1].isdigit() or not 1000 <= int(words[1]) <= 1000000:
                raise ValueError('the period must be 1000 to 1000000 microseconds, got %r' % (words[1],))
            period = int(words[1])
        return (quota, period)

    def read(self, raw):
        words = raw.split()
        return (UNLIMITED if words[0] == 'max' else int(words[0]), int(words[1]))

    def same(self, desired, current, page_size=4096):
        return desired[0] == current[0] and desired[1] in (None, current[1])

    def render(self, canonical):
        quota = 'max' if canonical[0] == UNLIMITED else str(canonical[0])
        return [quota if canonical[1] is None else '%s %d' % (quota, canonical[1])]

    def show(self, canonical):
        return self.render(canonical)[0]


class IoMax(Kind):
    """cgroup v2 io.max: 'MAJ:MIN rbps=N wbps=max ...' per device; only the
    keys given are compared, one device per write()."""

    name = 'io.max lines'
    multi_line = True
    independent_lines = True

    def _parse_lines(self, lines):
        devices = {}
        for line in lines:
            words = _single_line(_scalar_text(line)).split()
            if not words:
                continue
            if not re.match(r'^[0-9]+:[0-9]+$', words[0]):
                raise ValueError('expected "MAJ:MIN key=value ...", got %r' % (line,))
            limits = devices.setdefault(words[0], {})
            for word in words[1:]:
                key, sep, val = word.partition('=')
                if not sep or key not in ('rbps', 'wbps', 'riops', 'wiops') or not (val == 'max' or val.isdigit()):
                    raise ValueError('expected rbps, wbps, riops or wiops = a number or max, got %r' % (word,))
                limits[key] = val
        return tuple(sorted((dev, tuple(sorted(limits.items()))) for dev, limits in devices.items()))

    def parse(self, value):
        if isinstance(value, str):
            value = value.splitlines()
        if not isinstance(value, (list, tuple)):
            raise ValueError('expected lines of "MAJ:MIN key=value ..."')
        return self._parse_lines(value)

    def read(self, raw):
        return self._parse_lines(raw.splitlines())

    def same(self, desired, current, page_size=4096):
        # The kernel shows no line for a device whose limits are all max, and
        # leaves out no key of a line it shows: what is missing is max.
        have = dict((dev, dict(limits)) for dev, limits in current)
        return all(have.get(dev, {}).get(k, 'max') == v for dev, limits in desired for k, v in limits)

    def render(self, canonical):
        return ['%s %s' % (dev, ' '.join('%s=%s' % kv for kv in limits)) for dev, limits in canonical]

    def delta(self, target, current):
        """Only the devices whose limits differ: one write() each."""
        return [line for line, item in zip(self.render(target), target)
                if current is None or not self.same((item,), current)]

    def show(self, canonical):
        return ', '.join(self.render(canonical))


class Partition(Kind):
    """cgroup v2 cpuset.cpus.partition: member, root or isolated. The kernel
    keeps the type it was given even when it cannot honour it, and then reads
    back e.g. 'root invalid (Parent is not a partition root)': writing 'root'
    again changes nothing, so only the type is compared, and the read-back
    text (with the reason) is what the result shows."""

    name = 'partition type'
    one_line = True
    TYPES = ('member', 'root', 'isolated')

    def parse(self, value):
        # A snapshot may carry the kernel's text, reason and all.
        words = _single_line(_scalar_text(value)).split()
        if not words or words[0] not in self.TYPES:
            raise ValueError('expected member, root or isolated, got %r' % (value,))
        return words[0]

    def read(self, raw):
        return ' '.join(raw.split())

    def same(self, desired, current, page_size=4096):
        return desired.split()[:1] == current.split()[:1]


class ControllerSet(Kind):
    """cgroup.subtree_control: a set of controller names, changed with
    '+name' and '-name' words from the current set."""

    name = 'controller list'

    def parse(self, value):
        if isinstance(value, str):
            value = value.replace(',', ' ').split()
        if not isinstance(value, (list, tuple)):
            raise ValueError('expected a list of controller names')
        names = [_scalar_text(v).lstrip('+') for v in value]
        for name in names:
            if not re.match(r'^[a-z_]+$', name):
                raise ValueError('%r is not a controller name' % (name,))
        return frozenset(names)

    def read(self, raw):
        return frozenset(raw.split())

    def same(self, desired, current, page_size=4096):
        return desired == current

    def delta(self, target, current):
        """One write of '+a +b -c' that turns current into target."""
        words = ['+' + c for c in sorted(target - (current or frozenset()))]
        words += ['-' + c for c in sorted((current or frozenset()) - target)]
        return [' '.join(words)] if words else []

    def render(self, canonical):
        return self.delta(canonical, frozenset())

    def show(self, canonical):
        return ' '.join(sorted(canonical))
