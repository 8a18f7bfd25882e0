# -*- coding: utf-8 -*-
# Copyright: checkpoint_restore.cgroups contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the spec formats people already have into the native spec mapping:
CRIU's cgroup.img (through pycriu, or the crit command), the JSON that
`crit decode` prints, and libcgroup's cgconfig.conf. Each reader returns
(native data, warnings); spec.load_spec validates the data afterwards.
No I/O here beyond reading the input (and running crit)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re
import subprocess

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import properties
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import spec as sp
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import SpecError

FORMATS = ('auto', 'native', 'criu', 'crit_json', 'cgconfig')
_CGCONFIG_RE = re.compile(r'^\s*(group|mount|default|template|namespace)\b[^{;=]*\{', re.MULTILINE)


def load_src(path, fmt='auto'):
    """(native spec mapping, warnings) of the file or CRIU image directory at path."""
    if fmt not in FORMATS:
        raise SpecError('Invalid format %r: choose one of %s.' % (fmt, ', '.join(FORMATS)))
    if fmt == 'auto':
        fmt = detect(path)
    if fmt == 'native':
        return sp.read_spec_file(path), []
    if fmt == 'criu':
        image_path = _image_path(path)
        return criu_to_spec(decode_criu_image(image_path), image_path)
    text = _read_text(path)
    if fmt == 'crit_json':
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SpecError('Failed to parse crit JSON file %s: %s.' % (path, exc))
        return criu_to_spec(data, path)
    return cgconfig_to_spec(text, path)


def detect(path):
    """The format of a file, decided from its content."""
    if os.path.isdir(path):
        return 'criu'
    try:
        with open(path, 'rb') as handle:
            head = handle.read(65536)
    except (IOError, OSError) as exc:
        raise SpecError('Failed to read spec file %s: %s.' % (path, exc.strerror or exc))
    try:
        text = head.decode('utf-8')
    except UnicodeDecodeError:
        return 'criu'
    if '\x00' in text:
        return 'criu'
    if text.lstrip().startswith('{'):
        # crit decode prints {"magic": ..., "entries": [...]}; the native spec has "cgroups".
        if re.match(r'\s*\{\s*"(magic|entries)"', text):
            return 'crit_json'
        return 'native'
    if _CGCONFIG_RE.search(text):
        return 'cgconfig'
    return 'native'


def _read_text(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read().decode('utf-8')
    except (IOError, OSError) as exc:
        raise SpecError('Failed to read spec file %s: %s.' % (path, exc.strerror or exc))
    except UnicodeDecodeError:
        raise SpecError('Failed to read spec file %s: it is not UTF-8 text.' % path)


def _image_path(path):
    if os.path.isdir(path):
        image = os.path.join(path, 'cgroup.img')
        if not os.path.isfile(image):
            raise SpecError('Failed to read CRIU images in %s: there is no cgroup.img; was the dump '
                            'made with --manage-cgroups?' % path)
        return image
    return path


# -- CRIU ----------------------------------------------------------------------

def decode_criu_image(path):
    """The image as crit decode's mapping: with CRIU's pycriu if it imports,
    else with the crit command."""
    try:
        import pycriu  # pylint: disable=import-error
    except ImportError:
        pycriu = None
    if pycriu is not None:
        try:
            with open(path, 'rb') as handle:
                return pycriu.images.load(handle)
        except (IOError, OSError) as exc:
            raise SpecError('Failed to read CRIU image %s: %s.' % (path, exc.strerror or exc))
        except Exception as exc:  # pylint: disable=broad-except
            # pycriu raises protobuf, struct and its own errors for a bad image.
            raise SpecError('Failed to decode CRIU image %s: %s (%s); the image is corrupt or cut short.'
                            % (path, exc, type(exc).__name__))
    crit = _which('crit')
    if crit is None:
        raise SpecError('Failed to decode CRIU image %s: neither CRIU\'s pycriu Python module nor the crit '
                        'command is available on this host; install CRIU (Debian and Ubuntu: the criu package) '
                        'or give the JSON that "crit decode" prints, with format crit_json.' % path)
    # The reader has no AnsibleModule for run_command; the argument list is never run by a shell.
    proc = subprocess.Popen([crit, 'decode', '-i', path],  # pylint: disable=ansible-bad-function
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()
    if proc.returncode != 0:
        lines = err.decode('utf-8', 'replace').strip().splitlines()
        raise SpecError('Failed to decode CRIU image %s with crit: %s; the image is corrupt or cut short.'
                        % (path, lines[-1] if lines else 'exit status %d' % proc.returncode))
    try:
        return json.loads(out.decode('utf-8'))
    except ValueError as exc:
        raise SpecError('Failed to decode CRIU image %s: crit printed no JSON (%s).' % (path, exc))


# Ansible may run modules with a short PATH; crit lives in one of these.
EXTRA_BIN_DIRS = ('/usr/sbin', '/usr/bin', '/sbin', '/bin')


def _which(name):
    for folder in os.environ.get('PATH', os.defpath).split(os.pathsep) + list(EXTRA_BIN_DIRS):
        candidate = os.path.join(folder, name)
        if folder and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


class _Builder:
    """Collects cgroups by path from several hierarchies into one spec."""

    def __init__(self, where):
        self.where = where
        self.cgroups = {}
        self.warnings = []
        self.skipped = {}

    def skip(self, name, reason):
        """Files that are never restored, reported once per reason."""
        self.skipped.setdefault(reason, set()).add(name)

    def cgroup(self, path):
        return self.cgroups.setdefault(path, {'controllers': set(), 'perms': None, 'file_perms': {},
                                              'properties': {}})

    def set_once(self, path, mapping, key, value, what):
        """Core files and directory perms are one value per cgroup in the
        spec; different values in different hierarchies cannot be kept."""
        if mapping.get(key) is not None and mapping[key] != value:
            self.warnings.append('%s: cgroup %r has different %s in different hierarchies (%r and %r); '
                                 'the spec keeps the first.'
                                 % (self.where, sp.show_path(path), what, mapping[key], value))
        elif mapping.get(key) is None:
            mapping[key] = value

    def data(self):
        for reason in sorted(self.skipped):
            self.warnings.append('%s: not restored, %s: %s.' % (self.where, reason, ', '.join(sorted(self.skipped[reason]))))
        if not self.cgroups:
            raise SpecError('Failed to read %s: it names no cgroup.' % self.where)
        return sp.spec_data(self.cgroups)


def _perms(value):
    """CRIU's cgroup_perms (mode with file type bits) -> spec perms."""
    if not isinstance(value, dict):
        return None
    return {'mode': '%04o' % (int(value.get('mode', 0)) & 0o7777), 'uid': int(value.get('uid', 0)),
            'gid': int(value.get('gid', 0))}


def _criu_value(name, value):
    """CRIU's saved text -> a spec value. memory.oom_control is saved as 0 or 1
    (older CRIU saved the kernel's lines); multi-line files become lists."""
    text = '' if value is None else str(value)
    if name == 'memory.oom_control':
        match = re.search(r'oom_kill_disable\s+([01])', text)
        return int(match.group(1)) if match else text.strip()
    if properties.kind_of(name).multi_line:
        return [line.strip() for line in text.splitlines() if line.strip()]
    return text.strip()


def criu_to_spec(image, where):
    """crit decode's mapping of cgroup.img -> (native spec mapping, warnings)."""
    if not isinstance(image, dict) or not isinstance(image.get('entries'), list):
        raise SpecError('Failed to read %s: there is no "entries" list; expected the output of '
                        '"crit decode" of a cgroup.img.' % where)
    magic = image.get('magic')
    if magic not in (None, 'CGROUP'):
        raise SpecError('Failed to read %s: it is a CRIU %s image, not cgroup.img.' % (where, magic))
    if not image['entries']:
        raise SpecError('Failed to read %s: it holds no cgroup entry; the image is empty or cut short.' % where)
    entry = image['entries'][0]
    if not isinstance(entry, dict):
        raise SpecError('Failed to read %s: entries[0] is not a mapping.' % where)
    build = _Builder(where)
    for index, controller in enumerate(entry.get('controllers') or []):
        cnames = [str(c) for c in (controller.get('cnames') or [])]
        # cgroup v2 is saved with the controller name "": its controllers are those of its files.
        v1_names = [c for c in cnames if c]
        for item in controller.get('dirs') or []:
            _criu_dir(build, item, (), v1_names, 'controllers[%d]' % index)
    for cg_set in entry.get('sets') or []:
        for member in cg_set.get('ctls') or []:
            names = [c for c in str(member.get('name', '')).split(',') if c]
            path = _image_path_components(build, member.get('path', '/'), 'set %s' % cg_set.get('id'))
            if path:
                build.cgroup(path)['controllers'].update(names)
    return build.data(), build.warnings


def _image_path_components(build, text, what):
    text = str(text or '').strip('/')
    if not text:
        return ()
    try:
        return sp.split_path(text)
    except SpecError as exc:
        raise SpecError('Failed to read %s: %s has a bad cgroup path: %s' % (build.where, what, exc))


def _criu_dir(build, item, parent, controllers, what):
    if not isinstance(item, dict) or 'dir_name' not in item:
        raise SpecError('Failed to read %s: %s has a dir without dir_name.' % (build.where, what))
    # A top-level dir_name is a whole path (lxc/ct101); below it, one name.
    path = parent + _image_path_components(build, item['dir_name'], what)
    cg = build.cgroup(path)
    cg['controllers'].update(controllers)
    if item.get('dir_perms') is not None:
        build.set_once(path, cg, 'perms', _perms(item['dir_perms']), 'directory perms')
    for prop in item.get('properties') or []:
        name = str(prop.get('name', ''))
        if prop.get('perms') is not None:
            build.set_once(path, cg['file_perms'], name, _perms(prop['perms']), 'perms of %s' % name)
        if name in properties.PERMS_ONLY:
            continue
        reason = properties.refusal_reason(name)
        if reason:
            build.skip(name, reason)
            cg['file_perms'].pop(name, None)
            continue
        own = properties.controller_of(name)
        if own and not controllers:
            cg['controllers'].add(own)
        build.set_once(path, cg['properties'], name, _criu_value(name, prop.get('value')), name)
    for child in item.get('children') or []:
        _criu_dir(build, child, path, controllers, what)


# -- libcgroup's cgconfig.conf ---------------------------------------------------

_TOKEN_RE = re.compile(r'"([^"]*)"|([{}=;])|([^\s{}=;"#]+)|(#[^\n]*)|(\s+)|(")')


def _tokens(text, where):
    """[(kind, text, line)], kind 'str', 'sym' or 'word'. Quoted strings may span lines."""
    tokens = []
    line = 1
    for match in _TOKEN_RE.finditer(text):
        quoted, sym, word, _comment, _space, stray = match.groups()
        if stray is not None:
            raise SpecError('Failed to parse cgconfig file %s: line %d: a quote is not closed.' % (where, line))
        if quoted is not None:
            tokens.append(('str', quoted, line))
        elif sym is not None:
            tokens.append(('sym', sym, line))
        elif word is not None:
            tokens.append(('word', word, line))
        line += match.group(0).count('\n')
    return tokens


def _parse_block(tokens, pos, where, opened_at):
    """Items of a block: ('set', key, value, line) or ('block', head, items, line)."""
    items = []
    head = []
    while pos < len(tokens):
        kind, text, line = tokens[pos]
        pos += 1
        if kind == 'sym' and text == '{':
            if not head:
                raise SpecError('Failed to parse cgconfig file %s: line %d: a block has no name.' % (where, line))
            body, pos = _parse_block(tokens, pos, where, line)
            items.append(('block', head, body, head[0][2]))
            head = []
        elif kind == 'sym' and text == '}':
            if head:
                raise SpecError('Failed to parse cgconfig file %s: line %d: expected ";" after %r.'
                                % (where, line, ' '.join(t[1] for t in head)))
            if opened_at is None:
                raise SpecError('Failed to parse cgconfig file %s: line %d: unbalanced brace, a "}" '
                                'closes no block.' % (where, line))
            return items, pos
        elif kind == 'sym' and text == ';':
            items.append(_assignment(head, where, line))
            head = []
        else:
            head.append((kind, text, line))
    if opened_at is not None:
        raise SpecError('Failed to parse cgconfig file %s: unbalanced brace, the block opened at line %d '
                        'is not closed.' % (where, opened_at))
    if head:
        raise SpecError('Failed to parse cgconfig file %s: line %d: unexpected end of file after %r.'
                        % (where, head[-1][2], ' '.join(t[1] for t in head)))
    return items, pos


def _assignment(head, where, line):
    if len(head) < 3 or head[1][1] != '=' or head[0][0] == 'sym':
        raise SpecError('Failed to parse cgconfig file %s: line %d: expected "name = value;", got %r.'
                        % (where, line, ' '.join(t[1] for t in head)))
    return ('set', head[0][1], ' '.join(t[1] for t in head[2:]), head[0][2])


def _block_name(head):
    return ''.join(t[1] for t in head)


def cgconfig_to_spec(text, where):
    """cgconfig.conf text -> (native spec mapping, warnings)."""
    items, _pos = _parse_block(_tokens(text, where), 0, where, None)
    build = _Builder(where)
    for item in items:
        if item[0] != 'block':
            raise SpecError('Failed to parse cgconfig file %s: line %d: %r is outside any block.'
                            % (where, item[3], item[1]))
        _kind, head, body, line = item
        keyword = head[0][1]
        if keyword == 'mount':
            mounts = ', '.join('%s=%s' % (i[1], i[2]) for i in body if i[0] == 'set')
            build.warnings.append('%s: line %d: the mount block (%s) is not acted on; hierarchies are mounted '
                                  'by cgroup_restore or the cgroup_premount role.' % (where, line, mounts))
        elif keyword == 'group' and len(head) >= 2:
            _cgconfig_group(build, _block_name(head[1:]), body, line)
        else:
            build.warnings.append('%s: line %d: the %s block is not supported and was ignored.'
                                  % (where, line, _block_name(head)))
    return build.data(), build.warnings


def _cgconfig_group(build, name, body, line):
    try:
        path = () if name in ('.', '/') else sp.split_path(name, 'group name')
    except SpecError as exc:
        raise SpecError('Failed to read cgconfig file %s: line %d: %s' % (build.where, line, exc))
    cg = build.cgroup(path)
    perm_blocks = {}
    for item in body:
        if item[0] != 'block':
            raise SpecError('Failed to parse cgconfig file %s: line %d: group %s: %r must be inside a '
                            'controller section.' % (build.where, item[3], name, item[1]))
        section = _block_name(item[1])
        if section == 'perm':
            for sub in item[2]:
                if sub[0] == 'block' and _block_name(sub[1]) in ('task', 'admin'):
                    perm_blocks[_block_name(sub[1])] = dict((i[1], i[2]) for i in sub[2] if i[0] == 'set')
            continue
        cg['controllers'].add(section)
        _cgconfig_values(build, path, cg, section, item[2])
    _cgconfig_perms(cg, perm_blocks)


def _cgconfig_values(build, path, cg, section, items):
    deny, allow = [], []
    for item in items:
        if item[0] != 'set':
            raise SpecError('Failed to parse cgconfig file %s: line %d: a block inside controller %s.'
                            % (build.where, item[3], section))
        name, value = item[1], item[2]
        # Hand-written files set the whitelist with devices.deny "a" and devices.allow lines.
        if name in ('devices.deny', 'devices.allow'):
            (deny if name == 'devices.deny' else allow).extend(v for v in value.splitlines() if v.strip())
            continue
        reason = properties.refusal_reason(name)
        if reason:
            build.skip(name, reason)
            continue
        cg['properties'][name] = _criu_value(name, value)
    if deny or allow:
        if deny and [' '.join(d.split()) for d in deny] not in (['a'], ['a *:* rwm']):
            build.warnings.append('%s: group %s: devices.deny other than "a" cannot be expressed as a whitelist; '
                                  'only devices.allow was kept.' % (build.where, sp.show_path(path)))
        cg['properties']['devices.list'] = [a.strip() for a in allow]


def _cgconfig_perms(cg, perm_blocks):
    admin, task = perm_blocks.get('admin'), perm_blocks.get('task')
    if admin:
        perms = dict((k, v) for k, v in (('mode', admin.get('dperm')), ('uid', admin.get('uid')),
                                         ('gid', admin.get('gid'))) if v is not None)
        if perms:
            cg['perms'] = perms
    if task:
        perms = dict((k, v) for k, v in (('mode', task.get('fperm')), ('uid', task.get('uid')),
                                         ('gid', task.get('gid'))) if v is not None)
        if perms:
            # libcgroup gives the task owner the file that moves tasks: tasks in v1.
            cg['file_perms']['tasks'] = perms
