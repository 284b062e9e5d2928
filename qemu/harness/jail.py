"""The sandbox's second tier, for machines where bubblewrap cannot make one
(a Docker container with its default seccomp profile, as Gradescope and
CI runners use: no user namespaces, no mounts), when the grader is root.

The build runs chrooted into a tree of hard links (the system's programs,
the kernel trees, the kit's headers) made once, as an unprivileged user
of its own, with no_new_privs, a seccomp filter that refuses what no
compiler needs (sockets, ptrace, other processes' memory, keys, BPF,
perf, mounts, namespaces, modules), in a session of its own with stdin
closed. The tree has no /proc, no home and nothing of the grader's.

Unlike bubblewrap it shares the machine's process IDs and its network
namespace (the filter refuses sockets instead), and the tree's paths are
fixed (/build, /link): one jailed build at a time (lock()).
"""
import contextlib
import ctypes
import errno
import fcntl
import hashlib
import os
import pwd
import shutil
import signal
import stat
import struct

USER = "kdkit-build"    # made by setup.sh (useradd); else nobody's IDs
NOBODY = 65534
# Never in the jail: the saved VMs in a kernel's build folder (large, and
# nothing a compiler reads).
LEFT_OUT = {"kdkit-vm"}
DEVICES = {"null": (1, 3), "zero": (1, 5), "urandom": (1, 9)}

# x86_64 system calls the filter refuses with EPERM (asm/unistd_64.h;
# tests/test_jail.py checks the numbers against the header).
DENIED = {
    "socket": 41, "ptrace": 101, "syslog": 103, "pivot_root": 155, "adjtimex": 159,
    "chroot": 161, "acct": 163, "settimeofday": 164, "mount": 165, "umount2": 166,
    "swapon": 167, "swapoff": 168, "reboot": 169, "iopl": 172, "ioperm": 173,
    "init_module": 175, "delete_module": 176, "quotactl": 179, "clock_settime": 227,
    "kexec_load": 246, "add_key": 248, "request_key": 249, "keyctl": 250, "unshare": 272,
    "perf_event_open": 298, "name_to_handle_at": 303, "open_by_handle_at": 304, "setns": 308,
    "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312, "finit_module": 313,
    "kexec_file_load": 320, "bpf": 321, "userfaultfd": 323, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428, "move_mount": 429,
    "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
}
CLONE, CLONE3 = 56, 435
# clone()'s namespace flags: CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER,
# NEWPID, NEWNET, NEWTIME.
CLONE_NEW = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | \
    0x20000000 | 0x40000000 | 0x00000080
AUDIT_ARCH_X86_64 = 0xC000003E
X32_BIT = 0x40000000

# Classic BPF, as the kernel's seccomp takes it (linux/filter.h, seccomp.h).
_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _ERRNO = 0x7FFF0000, 0x00050000
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _PR_SET_PDEATHSIG = 38, 22, 1
_SECCOMP_MODE_FILTER = 2


def _insn(code, k=0, jt=0, jf=0):
    return struct.pack("HBBI", code, jt, jf, k)


def filter_program():
    """The seccomp filter as bytes: another ABI (i386, x32) or a denied
    call gets EPERM, clone() with a namespace flag too, and clone3()
    ENOSYS (its flags are out of a filter's reach; glibc then uses clone)."""
    deny = _insn(_RET, _ERRNO | errno.EPERM)
    prog = [_insn(_LD_W_ABS, 4), _insn(_JEQ, AUDIT_ARCH_X86_64, 1, 0), deny,
            _insn(_LD_W_ABS, 0), _insn(_JGE, X32_BIT, 0, 1), deny,
            _insn(_JEQ, CLONE3, 0, 1), _insn(_RET, _ERRNO | errno.ENOSYS)]
    for nr in sorted(DENIED.values()):
        prog += [_insn(_JEQ, nr, 0, 1), deny]
    prog += [_insn(_JEQ, CLONE, 0, 3), _insn(_LD_W_ABS, 16), _insn(_JSET, CLONE_NEW, 0, 1), deny,
             _insn(_RET, _ALLOW)]
    return b"".join(prog)


class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _prctl(*args):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(*[ctypes.c_ulong(a) if isinstance(a, int) else a for a in args]) != 0:
        raise OSError(ctypes.get_errno(), f"prctl{args[:1]}")


def confine():
    """no_new_privs, then the seccomp filter, for this process and all it
    starts. Call it in the child, after dropping privileges."""
    code = filter_program()
    buf = ctypes.create_string_buffer(code, len(code))
    prog = _Fprog(len(code) // 8, ctypes.cast(buf, ctypes.c_void_p))
    _prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    _prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0)


def ids():
    """(uid, gid) the jailed build runs as: its own user, else nobody."""
    try:
        user = pwd.getpwnam(USER)
        return user.pw_uid, user.pw_gid
    except KeyError:
        return NOBODY, NOBODY


def enter(root, workdir, limits):
    """In the child, before exec: chroot into root, drop to the jail's
    user, limits(), the filter, and die with the grader."""
    uid, gid = ids()    # the user's name is looked up outside: the tree has no /etc/passwd
    os.chroot(root)
    os.chdir(workdir)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    limits()
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)    # the uid change clears it: set after
    confine()


def _link_tree(src, dest):
    """dest mirrors src with hard links (a copy where a link cannot be
    made): files root owns, which the jail's user cannot change."""
    if not os.path.isdir(src) or os.path.islink(src):
        _link_entry(src, dest)
        return
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = [d for d in dirnames if d not in LEFT_OUT]
        out = os.path.join(dest, os.path.relpath(dirpath, src))
        os.makedirs(out, exist_ok=True)
        shutil.copystat(dirpath, out)
        # os.walk lists a link to a folder with the folders: it is linked, not walked.
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            _link_entry(os.path.join(dirpath, name), os.path.join(out, name))


def _signature(path):
    """What changes when a file of the tree is added, removed or replaced:
    the modification times of its folders."""
    if not os.path.isdir(path) or os.path.islink(path):
        st = os.lstat(path)
        return f"{st.st_ino}:{st.st_mtime_ns}"
    h = hashlib.sha256()
    for dirpath, dirnames, _files in os.walk(path):
        dirnames[:] = [d for d in dirnames if d not in LEFT_OUT]
        h.update(f"{dirpath}:{os.stat(dirpath).st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _link_entry(src, dest):
    """One symbolic link or regular file of the tree; sockets, fifos and
    devices stay out."""
    if os.path.lexists(dest):
        return
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if os.path.islink(src):
        os.symlink(os.readlink(src), dest)
    elif stat.S_ISREG(os.lstat(src).st_mode):
        try:
            os.link(src, dest)
        except OSError:
            shutil.copy2(src, dest)


def prepare(root, trees, system=()):
    """Make (or complete) the jail at root: each of trees (absolute paths,
    at the same path inside; those missing here are skipped), every folder
    on the way to them world-readable, /tmp, /build, /link and a few
    devices. The system's trees (system) are linked once; the others again
    when they changed."""
    os.makedirs(root, exist_ok=True)
    os.chmod(root, 0o755)
    done = os.path.join(root, ".kdkit-jail")
    have = dict(l.split("\t", 1) for l in open(done).read().split("\n")
                if "\t" in l) if os.path.exists(done) else {}
    for path in [p for p in trees if os.path.lexists(p)]:
        inside = os.path.join(root, path.lstrip("/"))
        os.makedirs(os.path.dirname(inside), 0o755, exist_ok=True)
        now = "system" if path in system else _signature(path)
        if have.get(path) == now and os.path.lexists(inside):
            continue
        # A file replaced since (a git checkout writes a new one) would
        # leave the jail its old copy: the tree is linked afresh.
        if os.path.isdir(inside) and not os.path.islink(inside):
            shutil.rmtree(inside)
        _link_tree(path, inside)
        have[path] = now
    for d, mode in (("tmp", 0o1777), ("build", 0o755), ("link", 0o755), ("dev", 0o755)):
        os.makedirs(os.path.join(root, d), exist_ok=True)
        os.chmod(os.path.join(root, d), mode)
    for name, (major, minor) in DEVICES.items():
        dev = os.path.join(root, "dev", name)
        if not os.path.exists(dev):
            os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(dev, 0o666)      # mknod's mode passes the umask
    with open(done + ".tmp", "w") as f:
        f.write("\n".join(f"{p}\t{sig}" for p, sig in sorted(have.items())))
    os.replace(done + ".tmp", done)
    return root


@contextlib.contextmanager
def lock(root):
    """One jailed build at a time: its folders are the jail's /build and /link."""
    with open(os.path.join(os.path.dirname(root), os.path.basename(root) + ".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def give(path):
    """Hand a folder to the jail's user, to build in; never a file with a
    link elsewhere, whose owner would change there too."""
    uid, gid = ids()
    for dirpath, dirnames, filenames in os.walk(path):
        os.chown(dirpath, uid, gid)
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISDIR(st.st_mode) or st.st_nlink == 1:
                os.lchown(os.path.join(dirpath, name), uid, gid)
