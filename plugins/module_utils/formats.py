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

import bisect
import io
import json
from collections import OrderedDict
import os
import re
import struct
import subprocess

from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import properties
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import spec as sp
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils import targets
from ansible_collections.checkpoint_restore.cgroups.plugins.module_utils.errors import SpecError

FORMATS = ('auto', 'native', 'criu', 'crit_json', 'cgconfig')
_CGCONFIG_KEYWORDS = r'(group|mount|default|template|namespace|systemd)\b'
_CGCONFIG_RE = re.compile(r'^\s*' + _CGCONFIG_KEYWORDS + r'[^{;=]*\{', re.MULTILINE)
# libcgroup's own sample cgconfig.conf is all comments: its blocks commented out
_COMMENTED_CGCONFIG_RE = re.compile(r'^\s*#\s*' + _CGCONFIG_KEYWORDS + r'[^{;=\n]*\{', re.MULTILINE)
_COMMENT_RE = re.compile(r'#[^\n]*')
# What a cgconfig.conf that names no group reads as: a spec with no cgroup,
# which restores nothing (load_spec refuses an empty spec from anywhere else).
NOTHING_TO_RESTORE = {'version': 1, 'cgroups': {}}


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
    bare = _COMMENT_RE.sub('', text)
    if _CGCONFIG_RE.search(bare):
        return 'cgconfig'
    if not bare.strip() and _COMMENTED_CGCONFIG_RE.search(text):
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
    else with the crit command. The frames are checked first: neither
    decoder notices an image cut at an entry boundary or inside a payload
    that still parses, and would return part of the tree without a word."""
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except (IOError, OSError) as exc:
        raise SpecError('Failed to read CRIU image %s: %s.' % (path, exc.strerror or exc))
    check_image_frames(data, path)
    try:
        import pycriu  # pylint: disable=import-error
    except ImportError:
        pycriu = None
    if pycriu is not None:
        try:
            return pycriu.images.load(io.BytesIO(data))
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


# CRIU's image magics (criu/include/magic.h): images v1.1 start with
# IMG_COMMON (or IMG_SERVICE) and then the image's own magic; v1.0 images
# with the image's own magic alone.
_IMG_COMMON_MAGIC = 0x54564319
_IMG_SERVICE_MAGIC = 0x55105940
_CGROUP_MAGIC = 0x59383330


def check_image_frames(data, path):
    """Refuse a cgroup.img whose frames do not add up. The format
    (criu.org/Images, pycriu's images.py) is the magic, then entries,
    each a 4-byte little-endian payload size and that many bytes; cgroup.img
    holds exactly one entry (CRIU writes it with pb_write_one)."""
    def refuse(what):
        raise SpecError('Failed to read CRIU image %s (%d bytes): %s.' % (path, len(data), what))

    if len(data) < 4:
        refuse('it is too short to hold the image magic; the image is empty or cut short')
    offset = 4
    magic = struct.unpack('<I', data[:4])[0]
    if magic in (_IMG_COMMON_MAGIC, _IMG_SERVICE_MAGIC):
        if len(data) < 8:
            refuse('it ends inside the image magic; the image is cut short')
        magic = struct.unpack('<I', data[4:8])[0]
        offset = 8
    if magic != _CGROUP_MAGIC:
        refuse('its magic 0x%08x is not that of cgroup.img (0x%08x); it is another CRIU image or not one '
               'at all' % (magic, _CGROUP_MAGIC))
    entries = 0
    while offset < len(data):
        if len(data) - offset < 4:
            refuse('the last %d byte(s), from byte %d, are too few for an entry\'s 4-byte size; the image is '
                   'cut short or has bytes trailing' % (len(data) - offset, offset))
        size = struct.unpack('<I', data[offset:offset + 4])[0]
        start = offset + 4
        if size > len(data) - start:
            refuse('entry %d at byte %d announces %d bytes, but only %d follow; the image is cut short'
                   % (entries + 1, offset, size, len(data) - start))
        entries += 1
        offset = start + size
    if entries == 0:
        refuse('it holds no cgroup entry after the magic; the image is empty or cut short')
    if entries > 1:
        refuse('it holds %d entries; a cgroup.img holds exactly one, so the rest is trailing data' % entries)


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
        self.admin_groups = []  # cgconfig groups with an admin owner or fperm
        # CRIU images: (path, file name or None for the directory) -> {hierarchy key: perms}
        self.hierarchy_perms = {}

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

    def add_hierarchy_perms(self, path, name, controllers, perms):
        """The perms of a directory (name None) or a file as one hierarchy of
        a CRIU image saved them. CRIU saves each hierarchy's directory apart,
        and their owners and modes may differ (a hierarchy delegated to the
        container, the others not): data() keeps them per hierarchy then."""
        if perms is not None:
            self.hierarchy_perms.setdefault((path, name), {})[sp.show_perms_key(sorted(controllers))] = perms

    def _put_hierarchy_perms(self):
        for (path, name), by_hierarchy in self.hierarchy_perms.items():
            values = list(by_hierarchy.values())
            if all(v == values[0] for v in values):
                value = values[0]
            elif '' in by_hierarchy:  # a hierarchy saved with no controller name cannot be named
                value = values[0]
                self.warnings.append('%s: cgroup %r has different %s in different hierarchies, one of them '
                                     'without a controller name; the spec keeps the first (%r).'
                                     % (self.where, sp.show_path(path),
                                        'perms of ' + name if name else 'directory perms', value))
            else:
                value = dict(sorted(by_hierarchy.items()))
            cg = self.cgroups[path]
            if name is None:
                cg['perms'] = value
            else:
                cg['file_perms'][name] = value

    def data(self):
        self._put_hierarchy_perms()
        if self.admin_groups:
            groups = list(OrderedDict.fromkeys(self.admin_groups))  # each once, in the file's order
            shown = ', '.join(groups[:10]) + (' and %d more' % (len(groups) - 10) if len(groups) > 10 else '')
            self.warnings.append('%s: group(s) %s: the admin owner and fperm were given to the directory, the files '
                                 'the group sets and cgroup.procs; the group\'s other files keep the kernel\'s owner '
                                 'and mode (libcgroup gives them every file; the spec names files one by one).'
                                 % (self.where, shown))
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
    if len(image['entries']) > 1:
        raise SpecError('Failed to read %s: it holds %d entries; a cgroup.img holds exactly one.'
                        % (where, len(image['entries'])))
    entry = image['entries'][0]
    if not isinstance(entry, dict):
        raise SpecError('Failed to read %s: entries[0] is not a mapping.' % where)
    build = _Builder(where)
    for index, controller in enumerate(entry.get('controllers') or []):
        cnames = [_cname(c) for c in (controller.get('cnames') or [])]
        for item in controller.get('dirs') or []:
            if _empty_v2_root(cnames, item):
                continue
            _criu_dir(build, item, (), cnames, 'controllers[%d]' % index)
    for cg_set in entry.get('sets') or []:
        for member in cg_set.get('ctls') or []:
            names = [_cname(c) for c in str(member.get('name', '')).split(',')]
            path = _image_path_components(build, member.get('path', '/'), 'set %s' % cg_set.get('id'))
            if path:
                build.cgroup(path)['controllers'].update(names)
    return build.data(), build.warnings


def _cname(name):
    """CRIU saves the cgroup v2 hierarchy with the controller name "": the
    spec's 'unified', which names the v2 hierarchy."""
    return str(name) or targets.UNIFIED


def _empty_v2_root(cnames, item):
    """The v2 root as CRIU saves it on a v1 host: every process there has a
    "0::/" line in /proc/PID/cgroup (the kernel shows it once cgroup2 was ever
    mounted), so the image names the root of the v2 hierarchy, with no
    cgroup below it and nothing to set (cgroup.procs is saved for its
    perms). There is nothing to restore, and on a host with no cgroup2 mount
    it would be refused as a v2 cgroup with nowhere to go."""
    if cnames != [targets.UNIFIED] or not isinstance(item, dict):
        return False
    if str(item.get('dir_name', '')).strip('/') or item.get('children'):
        return False
    return all(str(prop.get('name', '')) in properties.PERMS_ONLY for prop in item.get('properties') or [])


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
        build.add_hierarchy_perms(path, None, controllers, _perms(item['dir_perms']))
    for prop in item.get('properties') or []:
        name = str(prop.get('name', ''))
        reason = None if name in properties.PERMS_ONLY else properties.refusal_reason(name)
        if reason:
            build.skip(name, reason)
            continue
        if prop.get('perms') is not None:
            build.add_hierarchy_perms(path, name, controllers, _perms(prop['perms']))
        if name in properties.PERMS_ONLY:
            continue
        if name == 'cgroup.type' and str(prop.get('value', '')).strip() != 'threaded':
            # Only "threaded" can be written; "domain" and the other types follow from the tree.
            continue
        own = properties.controller_of(name)
        if own and (not controllers or targets.UNIFIED in controllers):
            # v2's controllers are those of its files too: on a host where they
            # live in v1 hierarchies, they are restored there.
            cg['controllers'].add(own)
        build.set_once(path, cg['properties'], name, _criu_value(name, prop.get('value')), name)
    for child in item.get('children') or []:
        _criu_dir(build, child, path, controllers, what)


# -- libcgroup's cgconfig.conf ---------------------------------------------------

# Every character but white space is in one of these; the scan passes over
# the white space between matches. A comment matches with no group; a quoted
# string keeps its quotes, so that an empty one still has a group.
_TOKEN_RE = re.compile(r'("[^"]*")|([{}=;])|([^\s{}=;"#]+)|#[^\n]*|(")')


def _tokens(text, where):
    """[(kind, text, line)], kind 'str', 'sym' or 'word'. Scanned line by line,
    which gives each token its line for free; a quote left open on its line
    (a string over several lines, or a stray quote) sends the whole text to
    the scan that crosses lines."""
    tokens = []
    append = tokens.append
    findall = _TOKEN_RE.findall
    for line, text_of_line in enumerate(text.split('\n'), 1):
        for quoted, sym, word, stray in findall(text_of_line):
            if word:
                append(('word', word, line))
            elif sym:
                append(('sym', sym, line))
            elif quoted:
                append(('str', quoted[1:-1], line))
            elif stray:
                return _tokens_across_lines(text, where)
    return tokens


def _tokens_across_lines(text, where):
    """_tokens for a text with a quoted string over several lines: a token's
    line is the line it starts on."""
    newlines = [match.start() for match in re.finditer('\n', text)]
    tokens = []
    for match in _TOKEN_RE.finditer(text):
        quoted, sym, word, stray = match.groups()
        line = bisect.bisect_left(newlines, match.start()) + 1
        if word is not None:
            tokens.append(('word', word, line))
        elif sym is not None:
            tokens.append(('sym', sym, line))
        elif quoted is not None:
            tokens.append(('str', quoted[1:-1], line))
        elif stray is not None:
            raise SpecError('Failed to parse cgconfig file %s: line %d: a quote is not closed.' % (where, line))
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
    """cgconfig.conf text -> (native spec mapping, warnings). A file that
    names no group gives NOTHING_TO_RESTORE, and says so."""
    items, _pos = _parse_block(_tokens(text, where), 0, where, None)
    build = _Builder(where)
    for item in items:
        if item[0] != 'block':
            raise SpecError('Failed to parse cgconfig file %s: line %d: %r is outside any block.'
                            % (where, item[3], item[1]))
    namespaces = _cgconfig_namespaces(build, items)
    for _kind, head, body, line in items:
        keyword = head[0][1]
        if keyword == 'mount':
            mounts = ', '.join('%s=%s' % (i[1], i[2]) for i in body if i[0] == 'set')
            build.warnings.append('%s: line %d: the mount block (%s) is not acted on; hierarchies are mounted '
                                  'by cgroup_restore or the cgroup_premount role.' % (where, line, mounts))
        elif keyword == 'group' and len(head) >= 2:
            _cgconfig_group(build, _block_name(head[1:]), body, line, namespaces)
        elif keyword != 'namespace':
            build.warnings.append('%s: line %d: the %s block is not supported and was ignored.'
                                  % (where, line, _block_name(head)))
    if not build.cgroups:
        build.warnings.append('%s: it names no group, so there is nothing to restore.' % where)
        return NOTHING_TO_RESTORE, build.warnings
    return build.data(), build.warnings


def _cgconfig_namespaces(build, items):
    """{controller: path prefix} of the namespace blocks: libcgroup creates a
    group of a controller with a namespace below that path in the
    controller's hierarchy. Like libcgroup, a file with both a mount and a
    namespace block (ECGMOUNTNAMESPACE), and a controller given two
    namespaces, are refused."""
    namespaces, given_at, mount_at, namespace_at = {}, {}, None, None
    for _kind, head, body, line in items:
        keyword = head[0][1]
        if keyword == 'mount' and mount_at is None:
            mount_at = line
        if keyword != 'namespace':
            continue
        if namespace_at is None:
            namespace_at = line
        for entry in body:
            if entry[0] != 'set':
                raise SpecError('Failed to parse cgconfig file %s: line %d: a block inside the namespace block.'
                                % (build.where, entry[3]))
            controller, value, at = entry[1], entry[2].strip(), entry[3]
            try:
                prefix = sp.split_path(value, 'namespace of %s' % controller)
            except SpecError as exc:
                raise SpecError('Failed to read cgconfig file %s: line %d: %s' % (build.where, at, exc))
            if controller in namespaces and namespaces[controller] != prefix:
                raise SpecError('Failed to read cgconfig file %s: line %d: controller %s has two namespaces, %s '
                                '(line %d) and %s; libcgroup refuses that.'
                                % (build.where, at, controller, sp.show_path(namespaces[controller]),
                                   given_at[controller], sp.show_path(prefix)))
            namespaces[controller], given_at[controller] = prefix, at
    if namespaces and mount_at is not None:
        raise SpecError('Failed to read cgconfig file %s: it has a mount block (line %d) and a namespace block '
                        '(line %d); libcgroup refuses a file with both (ECGMOUNTNAMESPACE).'
                        % (build.where, mount_at, namespace_at))
    return namespaces


def _cgconfig_group(build, name, body, line, namespaces):
    """One group: a spec cgroup, or one per namespace its controllers have
    (each with the group's perms)."""
    try:
        path = () if name in ('.', '/') else sp.split_path(name, 'group name')
    except SpecError as exc:
        raise SpecError('Failed to read cgconfig file %s: line %d: %s' % (build.where, line, exc))
    perm_blocks = {}
    made = {}  # spec path -> its cgroup, in the order the group's sections name them
    for item in body:
        if item[0] != 'block':
            raise SpecError('Failed to parse cgconfig file %s: line %d: group %s: %r must be inside a '
                            'controller section.' % (build.where, item[3], name, item[1]))
        section = _block_name(item[1])
        if section == 'perm':
            _cgconfig_perm_block(build, name, item[2], perm_blocks)
            continue
        where = namespaces.get(section, ()) + path
        cg = made.get(where)
        if cg is None:
            cg = made[where] = build.cgroup(where)
        cg['controllers'].add(section)
        _cgconfig_values(build, where, cg, section, item[2])
    if not made:
        made[path] = build.cgroup(path)
    for cg in made.values():
        _cgconfig_perms(build, name, cg, perm_blocks)


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


# The keys of libcgroup's perm blocks (cgconfig.conf(5), libcgroup's
# config.c); cgsnapshot of libcgroup 3.x writes the task owner as tuid/tgid.
_PERM_KEYS = {'task': ('uid', 'gid', 'fperm'), 'admin': ('uid', 'gid', 'dperm', 'fperm')}
_PERM_ALIASES = {('task', 'tuid'): 'uid', ('task', 'tgid'): 'gid'}


def _cgconfig_perm_block(build, group, items, perm_blocks):
    """{'task' or 'admin': {key: (value, line)}}; anything libcgroup would not
    use is reported, never dropped silently."""
    for sub in items:
        kind = _block_name(sub[1]) if sub[0] == 'block' else None
        if kind not in _PERM_KEYS:
            build.warnings.append('%s: line %d: group %s: %r in a perm block is neither task nor admin; ignored.'
                                  % (build.where, sub[3], group, kind or sub[1]))
            continue
        block = perm_blocks.setdefault(kind, {})
        for entry in sub[2]:
            key = _PERM_ALIASES.get((kind, entry[1]), entry[1]) if entry[0] == 'set' else None
            if key not in _PERM_KEYS[kind]:
                build.warnings.append('%s: line %d: group %s: %r in the %s perm block is not one of %s; ignored.'
                                      % (build.where, entry[3], group, entry[1] if entry[0] == 'set' else
                                         _block_name(entry[1]), kind, ', '.join(_PERM_KEYS[kind])))
                continue
            block[key] = (entry[2], entry[3])


def _cgconfig_mode(build, group, kind, key, entry, kernel_mode):
    """An fperm or dperm as libcgroup applies it: the bits are masked by the
    owner's bits of the kernel's mode ("the owner permissions are used as an
    umask" for group and others), so fperm 0777 on a 0644 file gives 0666."""
    value, line = entry
    try:
        mode = int(value.strip(), 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise SpecError('Failed to read cgconfig file %s: line %d: group %s: %s %s = %r is not an octal mode.'
                        % (build.where, line, group, kind, key, value))
    owner = kernel_mode & 0o700
    return '%04o' % (mode & (owner | owner >> 3 | owner >> 6 | 0o7000))


def _cgconfig_perms(build, group, cg, perm_blocks):
    """libcgroup's perms: admin's uid and gid own the directory and every file
    of the group, with dperm and fperm; task's own `tasks` (the file that
    moves tasks in v1), with its fperm, and without a task owner admin's own it."""
    admin, task = perm_blocks.get('admin', {}), perm_blocks.get('task', {})
    admin_owner = dict((k, admin[k][0]) for k in ('uid', 'gid') if k in admin)
    if admin_owner or 'dperm' in admin:
        perms = dict(admin_owner)
        if 'dperm' in admin:
            perms['mode'] = _cgconfig_mode(build, group, 'admin', 'dperm', admin['dperm'], 0o755)
        cg['perms'] = perms
    if admin_owner or 'fperm' in admin:
        # the spec names files one by one: those the group sets, and v1's cgroup.procs
        for name in sorted(cg['properties']) + ['cgroup.procs']:
            perms = dict(admin_owner)
            if 'fperm' in admin:
                perms['mode'] = _cgconfig_mode(build, group, 'admin', 'fperm', admin['fperm'],
                                               properties.kernel_file_mode(name))
            cg['file_perms'][name] = perms
        build.admin_groups.append(group)
    tasks = dict(admin_owner)
    tasks.update((k, task[k][0]) for k in ('uid', 'gid') if k in task)
    if 'fperm' in task:
        tasks['mode'] = _cgconfig_mode(build, group, 'task', 'fperm', task['fperm'], properties.kernel_file_mode('tasks'))
    if tasks:
        cg['file_perms']['tasks'] = tasks
