"""Runs inside a sandbox: start each command of a JSON list (argv lists) in
turn and time it as a whole process. Prints a JSON list of {wall, cpu,
maxrss_mb, rc, tail}: wall-clock seconds, CPU seconds, the peak resident set of the process and of
its children that it waited for (wait4's rusage), and the end of its output."""

import json
import os
import subprocess
import sys
import tempfile
import time


def timed(argv, tail_chars=3000):
    """tail_chars: how much of the end of its output to keep."""
    with tempfile.TemporaryFile() as out:
        began = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        tail = out.read().decode('utf-8', 'replace')[-tail_chars:]
    # ru_maxrss is in KiB on Linux.
    # cpu: user + system seconds of the process and its waited-for children,
    # which a busy host disturbs less than the wall clock.
    return {'wall': round(wall, 4), 'cpu': round(usage.ru_utime + usage.ru_stime, 4),
            'maxrss_mb': round(usage.ru_maxrss / 1024.0, 1), 'rc': proc.returncode, 'tail': tail}


def main():
    with open(sys.argv[1]) as handle:
        commands = json.load(handle)
    print(json.dumps([timed(argv) for argv in commands]))


if __name__ == '__main__':
    main()
