#!/usr/bin/env python
"""Run a command as root on a real cgroup v2 (or v1) kernel, in a throwaway VM.

This machine's cgroup2 mount has only hugetlb (the other controllers are bound
to v1), so v2 code is tested on Debian's own kernel (linux-image-amd64) booted
in qemu-system-x86_64:

- plain emulation (TCG): KVM hangs on these machines;
- a small initramfs, built here from busybox-static, the 9p and overlay
  modules of that kernel and tools/v2vm/init, cached under build/v2vm/ with the kernel
  decompressed (both keyed on the kernel version);
- this machine's root filesystem shared read-only over 9p, so the command
  sees the repo, the .venv and this machine's Python at their usual paths;
- since the root is read-only, writes go to tmpfs: /run and /dev/shm are
  empty tmpfs, and /tmp and /var/tmp are overlays that show the host's files
  (a checkout may live there) and keep the VM's changes to themselves;
- cgroup2 on /sys/fs/cgroup with every controller enabled in the root's
  cgroup.subtree_control; or, with --cgroup v1, a tmpfs on /sys/fs/cgroup
  with the v1 hierarchies cpu,cpuacct, memory, pids, devices, freezer,
  cpuset, blkio and net_cls,net_prio mounted on it (and no cgroup2 at all),
  as on a classic v1 host;
- with --criu, what CRIU's feature checks (`criu check`) need of the kernel:
  the loopback interface up (always) and the modules of CRIU_MODULES loaded
  with the host's modprobe from /lib/modules;
- one block device, /dev/nullb0 (null_blk: it stores nothing), with the
  iocost policy on, so io.max and io.weight take its per-device lines;
- a run directory shared read-write at the same path inside and outside
  (V2VM_SHARE in the command's environment), for files in both directions;
- no network, unless --ssh-port asks for one: then a virtio card on qemu's
  user-mode network with `restrict=on` (the guest reaches nothing outside
  qemu) and a single forward from 127.0.0.1:PORT on this machine to port 22
  of the guest, for an sshd that the command starts
  (extensions/molecule/vm_host.py does that for Molecule);
- with --systemd, systemd 252 as PID 1 instead: the root an overlay (a
  tmpfs over the read-only 9p root), the units a test does not need masked,
  the command a unit started after multi-user.target, and ssh.service with
  the configuration --sshd-config names (tools/v2vm/init, systemd_boot).

The command's stdout and stderr (merged) come back over the serial console
and so does its exit code. The VM powers off when the command ends.

    tools/v2vm.py run [--timeout S] [--share DIR] [-e KEY=VALUE] [--ssh-port P]
                      [--cgroup v1|v2] [--criu] [--systemd [--sshd-config F]] -- CMD...
    tools/v2vm.py build         build (or find) the cached kernel image and initramfs
    tools/v2vm.py info          kernel, initramfs and qemu that would be used

From Python (e.g. pytest):

    import v2vm
    result = v2vm.run(['python3', '-c', 'print(1)'], timeout=120)
    result = v2vm.run(['criu', 'check'], cgroup='v1', criu=True)
    result.returncode, result.output, result.boot_seconds

A VM that cannot start raises VMError; `run` on the command line then exits
with 125. Nothing is skipped quietly.
"""

import argparse
import glob
import hashlib
import lzma
import os
import re
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INIT_SCRIPT = os.path.join(REPO, 'tools', 'v2vm', 'init')
CACHE_DIR = os.path.join(REPO, 'build', 'v2vm')
BUSYBOX = '/bin/busybox'
QEMU = 'qemu-system-x86_64'
# What /init loads: the 9p filesystem over virtio-pci, overlayfs, the
# virtio network card (used only with ssh_port), and null_blk, a block device
# that stores nothing (/dev/nullb0), for the io controller's per-device files;
# with their dependencies.
MODULES = ('virtio_pci', '9pnet_virtio', '9p', 'overlay', 'virtio_net', 'null_blk')
# The modules CRIU 3.17's `criu check` asks of Debian's kernel: nftables for
# its network locking, veth and tun for the devices it restores, and the
# sock_diag modules through which it reads sockets.
CRIU_MODULES = ('nf_tables', 'veth', 'tun', 'netlink_diag', 'unix_diag', 'inet_diag', 'tcp_diag',
                'udp_diag', 'af_packet_diag')
# The cgroup layouts /init can mount (tools/v2vm/init): 'v2' the unified
# hierarchy alone, 'v1' the v1 hierarchies alone.
CGROUP_LAYOUTS = ('v2', 'v1')
# The guest's address on qemu's user-mode network (slirp's default).
GUEST_ADDRESS = '10.0.2.15'
# Host variables that the command keeps; everything else starts clean.
PASSED_ENV = ('PATH', 'HOME', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TERM', 'CI',
              'PYENV_ROOT', 'PYENV_VERSION', 'PYTHONPATH')
BOOT_TIMEOUT = 120
# systemd as PID 1 reaches multi-user.target in 1 to 6 minutes under emulation.
SYSTEMD_BOOT_TIMEOUT = 600
# The whole tests/v2 suite runs in one VM, under emulation, on a machine that
# may be busy: 5 to 6 minutes at load 1 with two workers (tests/v2vm), so twice that.
RUN_TIMEOUT = 1200
EXIT_VM_FAILED = 125


class VMError(Exception):
    """The VM could not be built, started or brought to the command."""


class Result:
    def __init__(self, returncode, output, console, boot_seconds, total_seconds):
        self.returncode = returncode
        self.output = output              # the command's stdout and stderr, merged
        self.console = console            # the whole serial console, for diagnosis
        self.boot_seconds = boot_seconds  # qemu start to the command's start
        self.total_seconds = total_seconds

    def __repr__(self):
        return 'Result(returncode=%r, boot=%.1fs, total=%.1fs)' % (
            self.returncode, self.boot_seconds, self.total_seconds)


# -- the kernel ------------------------------------------------------------

def _version_key(version):
    return [(0, int(part), '') if part.isdigit() else (1, 0, part) for part in re.split(r'[.-]', version)]


def find_kernel(version=None):
    """(version, vmlinuz path) of a Debian kernel with its modules installed;
    the newest one unless a version is named."""
    found = {}
    for image in glob.glob('/boot/vmlinuz-*'):
        ver = image[len('/boot/vmlinuz-'):]
        if os.path.isfile(os.path.join('/lib/modules', ver, 'modules.dep')):
            found[ver] = image
    if version is not None:
        if version not in found:
            raise VMError('Failed to find kernel %s: no /boot/vmlinuz-%s with /lib/modules/%s '
                          '(run scripts/setup, which installs linux-image-amd64)' % (version, version, version))
        return version, found[version]
    if not found:
        raise VMError('Failed to find a kernel: no /boot/vmlinuz-* with its /lib/modules '
                      '(run scripts/setup, which installs linux-image-amd64)')
    version = max(found, key=_version_key)
    return version, found[version]


def module_load_order(version, names=MODULES):
    """Paths (relative to /lib/modules/<version>) of the named modules and all
    they depend on, each after its dependencies, from modules.dep."""
    moddir = os.path.join('/lib/modules', version)
    deps = {}
    with open(os.path.join(moddir, 'modules.dep')) as handle:
        for line in handle:
            if ':' in line:
                path, rest = line.split(':', 1)
                deps[path] = rest.split()

    def module_name(path):
        base = os.path.basename(path).split('.ko')[0]
        return base.replace('-', '_')

    by_name = {module_name(path): path for path in deps}
    order = []

    def visit(path):
        if path in order:
            return
        for dep in deps[path]:
            visit(dep)
        order.append(path)

    for name in names:
        if name not in by_name:
            # Built into this kernel: nothing to load.
            if _builtin(moddir, name):
                continue
            raise VMError('Failed to find module %s for kernel %s in %s' % (name, version, moddir))
        visit(by_name[name])
    return order


def _builtin(moddir, name):
    try:
        with open(os.path.join(moddir, 'modules.builtin')) as handle:
            return any(os.path.basename(line.strip()).split('.ko')[0].replace('-', '_') == name
                       for line in handle)
    except OSError:
        return False


def _read_module(path):
    """A module's bytes, decompressed: busybox insmod takes plain .ko only."""
    if path.endswith('.xz'):
        with lzma.open(path) as handle:
            return handle.read()
    if path.endswith('.zst'):
        return subprocess.run(['zstd', '-dc', path], stdout=subprocess.PIPE, check=True).stdout
    if path.endswith('.gz'):
        import gzip
        with gzip.open(path) as handle:
            return handle.read()
    with open(path, 'rb') as handle:
        return handle.read()


def boot_image(version, vmlinuz):
    """The kernel file to boot: the uncompressed vmlinux (an ELF that qemu
    boots directly through PVH) extracted from Debian's xz-compressed
    vmlinuz and cached, because decompressing in emulation costs seconds
    on every boot. Falls back to vmlinuz itself when it holds no xz payload."""
    target = os.path.join(CACHE_DIR, 'vmlinux-%s' % version)
    if os.path.isfile(target):
        return target
    with open(vmlinuz, 'rb') as handle:
        data = handle.read()
    start = data.find(b'\xfd7zXZ\x00')
    if start < 0:
        return vmlinuz
    try:
        elf = lzma.LZMADecompressor().decompress(data[start:])
    except lzma.LZMAError:
        return vmlinuz
    if not elf.startswith(b'\x7fELF'):
        return vmlinuz
    _write_atomically(target, elf)
    return target


def _write_atomically(target, data):
    """Write then rename, so a concurrent run never reads half a file."""
    os.makedirs(CACHE_DIR, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=CACHE_DIR, prefix='.tmp-')
    with os.fdopen(fd, 'wb') as handle:
        handle.write(data)
    os.chmod(tmp, 0o644)
    os.rename(tmp, target)


# -- the initramfs -----------------------------------------------------------

def _cpio_entry(out, ino, name, mode, data=b'', rdev=(0, 0)):
    """One entry of a "newc" cpio archive, the format the kernel unpacks."""
    name_bytes = name.encode() + b'\0'
    fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_bytes), 0)
    out.append(b'070701' + b''.join(b'%08X' % field for field in fields))
    out.append(name_bytes)
    out.append(b'\0' * (-(110 + len(name_bytes)) % 4))
    out.append(data)
    out.append(b'\0' * (-len(data) % 4))


def build_initramfs(version):
    """The cached initramfs for this kernel version; built when missing.
    The cache key also covers the init script and busybox, so an edit to
    either gives a new file."""
    if not os.access(BUSYBOX, os.X_OK):
        raise VMError('Failed to build the initramfs: %s is missing (run scripts/setup, '
                      'which installs busybox-static)' % BUSYBOX)
    modules = module_load_order(version)
    moddir = os.path.join('/lib/modules', version)
    with open(INIT_SCRIPT, 'rb') as handle:
        init = handle.read()
    with open(BUSYBOX, 'rb') as handle:
        busybox = handle.read()
    digest = hashlib.sha256(init + busybox + '\n'.join(modules).encode()).hexdigest()[:12]
    target = os.path.join(CACHE_DIR, 'initramfs-%s-%s.cpio' % (version, digest))
    if os.path.isfile(target):
        return target

    files = [('bin/busybox', busybox), ('init', init)]
    order = []
    for rel in modules:
        plain = os.path.basename(rel).split('.ko')[0] + '.ko'
        files.append(('modules/' + plain, _read_module(os.path.join(moddir, rel))))
        order.append(plain)
    files.append(('modules/order', ('\n'.join(order) + '\n').encode()))

    out = []
    ino = 1
    for directory in ('bin', 'dev', 'modules', 'proc', 'sys', 'newroot', 'upper'):
        _cpio_entry(out, ino, directory, 0o040755)
        ino += 1
    # init's first stdin/stdout is /dev/console, before /init can mount devtmpfs.
    _cpio_entry(out, ino, 'dev/console', 0o020600, rdev=(5, 1))
    ino += 1
    # The interpreter of /init's "#!/bin/sh".
    _cpio_entry(out, ino, 'bin/sh', 0o120777, b'busybox')
    ino += 1
    for name, data in files:
        mode = 0o100755 if name in ('init', 'bin/busybox') else 0o100644
        _cpio_entry(out, ino, name, mode, data)
        ino += 1
    _cpio_entry(out, 0, 'TRAILER!!!', 0)

    _write_atomically(target, b''.join(out))
    return target


# -- running -----------------------------------------------------------------

def qemu_command(kernel, initramfs, share, token, controllers=True, memory_mb=1024, cpus=2, ssh_port=None,
                 cgroup='v2', modules=(), systemd=False, sshd_config=None):
    if cgroup not in CGROUP_LAYOUTS:
        raise ValueError('cgroup layout %r: choose one of %s' % (cgroup, ', '.join(CGROUP_LAYOUTS)))
    if systemd and cgroup != 'v2':
        raise ValueError('systemd boots only on the unified layout (cgroup v2) here')
    if sshd_config and not (systemd and ssh_port):
        raise ValueError('sshd_config is for systemd\'s ssh.service, with an ssh_port')
    extra = []
    if systemd:
        # systemd prints nothing on the console but the command's output
        # (see tools/v2vm/init, systemd_boot), and mounts cgroup2 alone.
        extra = ['v2vm_systemd=1', 'v2vm_sshd_config=' + (sshd_config or ''), 'systemd.show_status=false',
                 'systemd.unified_cgroup_hierarchy=1', 'systemd.log_target=kmsg', 'systemd.log_level=warning']
    append = ' '.join(extra + [
        'console=ttyS0', 'quiet', 'panic=-1',
        # Under emulation on a loaded machine the kernel's check of the
        # IO-APIC timer can miss its ticks and panic ("IO-APIC + timer doesn't
        # work!"), seen at a load of 20 on 2 cores; qemu's timer works, so skip it.
        'no_timer_check',
        'v2vm_token=' + token, 'v2vm_share=' + share,
        'v2vm_controllers=%d' % (1 if controllers else 0),
        'v2vm_address=%s' % (GUEST_ADDRESS if ssh_port else ''),
        'v2vm_cgroup=' + cgroup,
        'v2vm_modules=' + ','.join(modules),
    ])
    if ssh_port:
        # restrict=on: the guest can reach nothing beyond qemu; the only way
        # in is the forward from this machine's loopback. romfile=: no boot ROM.
        nic = ['-netdev', 'user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:%d-%s:22' % (ssh_port, GUEST_ADDRESS),
               '-device', 'virtio-net-pci,netdev=net0,romfile=']
    else:
        nic = ['-nic', 'none']  # and so no network boot ROM
    return [QEMU, '-accel', 'tcg', '-m', str(memory_mb), '-smp', str(cpus), '-nographic'] + nic + [
        '-no-reboot', '-monitor', 'none', '-serial', 'stdio',
        '-kernel', kernel, '-initrd', initramfs, '-append', append,
        '-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
        '-virtfs', 'local,path=%s,mount_tag=share,security_model=none,multidevs=remap' % share,
    ]


def _run_script(argv, cwd, env):
    """The shell script the guest runs in its chroot."""
    assigns = ' '.join(shlex.quote('%s=%s' % item) for item in sorted(env.items()))
    return '\n'.join([
        'cd %s || exit 125' % shlex.quote(cwd),
        'exec env -i %s %s' % (assigns, ' '.join(shlex.quote(arg) for arg in argv)),
        '',
    ])


def run(argv, timeout=RUN_TIMEOUT, boot_timeout=BOOT_TIMEOUT, share=None, env=None, cwd=None,
        stream=None, controllers=True, kernel_version=None, ssh_port=None, cgroup='v2', criu=False,
        systemd=False, sshd_config=None):
    """Run argv as root in a fresh VM. Returns a Result; raises VMError when the
    VM cannot be built, does not reach the command within boot_timeout, or
    does not finish within timeout (then the qemu process is killed).

    share: a directory shared read-write at the same path in the VM (default:
    a temporary one, removed afterwards); it also gets .v2vm-run.sh and
    .v2vm-rc, the command as the guest runs it and its exit code. stream: a binary file that gets the
    command's output as it comes. env: variables added to the command's.
    ssh_port: forward 127.0.0.1:ssh_port on this machine to port 22 of the
    guest (see the module's docstring). cgroup: 'v2' or 'v1', the layout of
    /sys/fs/cgroup (controllers applies to v2 only). criu: load
    CRIU_MODULES, for `criu check`, dump and restore. systemd: systemd
    is PID 1 (on cgroup v2) and the command runs as a unit once
    multi-user.target is reached; give a boot_timeout of minutes
    (SYSTEMD_BOOT_TIMEOUT). sshd_config: with systemd and ssh_port,
    ssh.service runs sshd with this file (else ssh.service is masked)."""
    if not argv:
        raise ValueError('no command given')
    if shutil.which(QEMU) is None:
        raise VMError('Failed to start the VM: %s is missing (run scripts/setup, which installs '
                      'qemu-system-x86)' % QEMU)
    version, vmlinuz = find_kernel(kernel_version)
    kernel = boot_image(version, vmlinuz)
    initramfs = build_initramfs(version)

    own_share = share is None
    share = os.path.abspath(tempfile.mkdtemp(prefix='v2vm-') if own_share else share)
    os.makedirs(share, exist_ok=True)
    token = uuid.uuid4().hex
    full_env = {key: os.environ[key] for key in PASSED_ENV if key in os.environ}
    full_env.update({'TMPDIR': '/tmp', 'PYTHONDONTWRITEBYTECODE': '1', 'V2VM_SHARE': share})
    full_env.update(env or {})
    rc_file = os.path.join(share, '.v2vm-rc')
    try:
        if os.path.exists(rc_file):
            os.unlink(rc_file)
        with open(os.path.join(share, '.v2vm-run.sh'), 'w') as handle:
            handle.write(_run_script(argv, cwd or os.getcwd(), full_env))
        cmd = qemu_command(kernel, initramfs, share, token, controllers, ssh_port=ssh_port, cgroup=cgroup,
                           modules=CRIU_MODULES if criu else (), systemd=systemd, sshd_config=sshd_config)
        return _boot(cmd, token, rc_file, timeout, boot_timeout, stream)
    finally:
        if own_share:
            shutil.rmtree(share, ignore_errors=True)


def _boot(cmd, token, rc_file, timeout, boot_timeout, stream):
    begin = ('V2VM-BEGIN %s' % token).encode()
    end = ('V2VM-END %s ' % token).encode()
    fail = ('V2VM-FAIL %s ' % token).encode()
    console, output = [], []
    state = 'boot'
    end_rc = None
    started = time.monotonic()
    boot_seconds = None
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        pending = b''
        eof = False
        while not eof and state != 'done':
            now = time.monotonic()
            deadline = started + (boot_timeout if state == 'boot' else timeout)
            if now >= deadline:
                raise VMError('Failed to run the command in the VM: %s after %.0fs%s' % (
                    'no start of the command' if state == 'boot' else 'not finished',
                    now - started, _tail(console)))
            if not selector.select(min(1.0, deadline - now)):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            eof = not chunk
            pending += chunk
            lines = pending.split(b'\n')
            pending = b'' if eof else lines.pop()
            for line in lines:
                console.append(line)
                bare = line.rstrip(b'\r')
                # Markers may follow other bytes on their line (the firmware's
                # escape sequences, or the command's last line without \n).
                if state == 'boot' and bare.endswith(begin):
                    state, boot_seconds = 'command', time.monotonic() - started
                elif state == 'command' and end in bare:
                    before, rest = bare.split(end, 1)
                    _emit(before, output, stream)
                    state, end_rc = 'done', int(rest)
                elif fail in bare:
                    raise VMError('Failed to start the VM: /init could not %s%s' % (
                        bare.partition(fail)[2].decode(errors='replace'), _tail(console)))
                elif state == 'command':
                    _emit(line + b'\n', output, stream)
        try:
            proc.wait(timeout=30)  # the guest powers off right after the command
        except subprocess.TimeoutExpired:
            pass  # killed below; the command's result is complete
    finally:
        if proc.poll() is None:
            proc.kill()  # only the qemu we started
            proc.wait()
        proc.stdout.close()
    total = time.monotonic() - started
    if state != 'done':
        raise VMError('Failed to run the command in the VM: qemu exited with %s before the '
                      'command %s%s' % (proc.returncode, 'started' if state == 'boot' else 'ended',
                                        _tail(console)))
    try:
        with open(rc_file) as handle:
            returncode = int(handle.read().strip())
    except (OSError, ValueError) as exc:
        raise VMError('Failed to read the exit code from the run directory: %s' % exc)
    if returncode != end_rc:
        raise VMError('Failed to agree on the exit code: console says %s, run directory says %s'
                      % (end_rc, returncode))
    return Result(returncode, b''.join(output).decode(errors='replace'),
                  b'\n'.join(console).decode(errors='replace'), boot_seconds, total)


def _emit(data, output, stream):
    if not data:
        return
    output.append(data)
    if stream is not None:
        stream.write(data)
        stream.flush()


def _tail(console, count=40):
    if not console:
        return ' (no console output)'
    lines = [line.decode(errors='replace').rstrip('\r') for line in console[-count:]]
    return '; the console ended with:\n' + '\n'.join(lines)


# -- command line ------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    sub = parser.add_subparsers(dest='action', required=True)
    p_run = sub.add_parser('run', help='boot the VM and run a command in it')
    p_run.add_argument('--timeout', type=float, default=RUN_TIMEOUT,
                       help='seconds for the whole run (default %(default)s)')
    p_run.add_argument('--boot-timeout', type=float,
                       help='seconds until the command starts (default %d, %d with --systemd)'
                       % (BOOT_TIMEOUT, SYSTEMD_BOOT_TIMEOUT))
    p_run.add_argument('--share', help='directory shared read-write at the same path (default: a temporary one)')
    p_run.add_argument('-e', '--env', action='append', default=[], metavar='KEY=VALUE')
    p_run.add_argument('--no-controllers', action='store_true',
                       help="leave the root's cgroup.subtree_control empty")
    p_run.add_argument('--kernel', help='kernel version (default: the newest installed)')
    p_run.add_argument('--ssh-port', type=int, help='forward 127.0.0.1:PORT to port 22 of the guest')
    p_run.add_argument('--cgroup', choices=CGROUP_LAYOUTS, default='v2',
                       help='v2: cgroup2 on /sys/fs/cgroup; v1: the v1 hierarchies there (default %(default)s)')
    p_run.add_argument('--criu', action='store_true',
                       help="load the kernel modules CRIU's feature checks need (%s)" % ', '.join(CRIU_MODULES))
    p_run.add_argument('--systemd', action='store_true',
                       help='systemd as PID 1 (cgroup v2); the command runs as a unit after multi-user.target')
    p_run.add_argument('--sshd-config', help="with --systemd and --ssh-port: ssh.service's sshd configuration")
    p_run.add_argument('cmd', nargs=argparse.REMAINDER)
    sub.add_parser('build', help='build (or find) the cached kernel image and initramfs')
    sub.add_parser('info', help='what would be used')
    args = parser.parse_args(argv)

    try:
        if args.action == 'build':
            version, vmlinuz = find_kernel()
            print(boot_image(version, vmlinuz))
            print(build_initramfs(version))
            return 0
        if args.action == 'info':
            version, vmlinuz = find_kernel()
            print('kernel:    %s (%s, booted as %s)' % (version, vmlinuz, boot_image(version, vmlinuz)))
            print('modules:   %s' % ', '.join(module_load_order(version)))
            print('initramfs: %s' % build_initramfs(version))
            print('qemu:      %s' % (shutil.which(QEMU) or 'missing'))
            return 0
        cmd = args.cmd[1:] if args.cmd[:1] == ['--'] else args.cmd
        if not cmd:
            parser.error('run needs a command after --')
        env = dict(item.split('=', 1) for item in args.env)
        # A SIGTERM ends the run through run()'s cleanup, which kills the qemu it started.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
        boot_timeout = args.boot_timeout or (SYSTEMD_BOOT_TIMEOUT if args.systemd else BOOT_TIMEOUT)
        result = run(cmd, timeout=args.timeout, boot_timeout=boot_timeout, share=args.share,
                     env=env, stream=sys.stdout.buffer, controllers=not args.no_controllers,
                     kernel_version=args.kernel, ssh_port=args.ssh_port, cgroup=args.cgroup, criu=args.criu,
                     systemd=args.systemd, sshd_config=args.sshd_config)
    except VMError as exc:
        print('v2vm: %s' % exc, file=sys.stderr)
        return EXIT_VM_FAILED
    print('v2vm: exit code %d, boot %.1fs, total %.1fs'
          % (result.returncode, result.boot_seconds, result.total_seconds), file=sys.stderr)
    return result.returncode


if __name__ == '__main__':
    sys.exit(main())
