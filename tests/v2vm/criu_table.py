"""The table of what CRIU alone restores against what CRIU with the collection
restores, per limit, from tests/v2vm/test_criu.py's own run; printed at the
end of the pytest session (tests/v2vm/conftest.py) for docs/CRIU.md."""

RUNS = {}

COLUMNS = ('cgroup', 'file', 'original', 'CRIU alone (full)', 'cgroup_restore of cgroup.img',
           'collection (snapshot, strict, then CRIU soft)')


def record(layout, run):
    RUNS[layout] = run


def lost(original, after):
    """{(level, file)} whose value after differs from the original."""
    return {(level, name) for level, limits in original.items() for name, value in limits.items()
            if after.get(level, {}).get(name) != value}


def rows(run):
    for level, limits in sorted(run['original']['limits'].items()):
        for name, value in sorted(limits.items()):
            yield (level, name, value, run['criu_alone']['limits'][level][name],
                   run['from_image']['limits'][level][name], run['collection']['limits'][level][name])


def _cell(row, index, original):
    text = row[index]
    if index >= 3:
        return ('%s (same)' % text) if text == original else ('**%s**' % text)
    return text


def render():
    """Markdown lines: one table per layout, a changed value in bold."""
    lines = []
    for layout in sorted(RUNS):
        run = RUNS[layout]
        lines.append('cgroup %s (criu dump %.1fs, CRIU-alone restore %.1fs, collection restore %.1fs + '
                     'criu restore %.1fs):' % (layout, run['dump']['seconds'], run['criu_alone']['restore']['seconds'],
                                               run['collection']['restore']['seconds'],
                                               run['collection']['criu']['seconds']))
        lines.append('')
        lines.append('| %s |' % ' | '.join(COLUMNS))
        lines.append('|%s' % ('---|' * len(COLUMNS)))
        for row in rows(run):
            lines.append('| %s |' % ' | '.join(_cell(row, i, row[2]) for i in range(len(COLUMNS))))
        lines.append('')
    return lines
