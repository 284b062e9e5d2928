"""Run a build of a student's code in a sandbox, within a time, a memory
and an output limit. Two tiers, the first that works here (or
KDKIT_SANDBOX=bubblewrap|jail):

- bubblewrap: as nobody in a user namespace of its own, with no
  capabilities, no network, stdin closed, and only the folders it is
  given. What the student's file can #include, .incbin or otherwise reach
  is exactly what is bound here.
- jail (jail.py), where user namespaces are refused (a default Docker
  container) and the grader is root: chrooted into a tree of the same
  folders, as a user of its own, no_new_privs and a seccomp filter.
"""
import contextlib
import functools
import os
import resource
import shutil
import signal
import subprocess
import tempfile

from harness import jail, machine
from kernel import source as kernel_source

TIERS = ("bubblewrap", "jail")
TIME_LIMIT = 60             # seconds a build may take on one CPU (scaled by machine.slowness())
MEMORY_LIMIT = 2 << 30      # bytes of address space for each process
OUTPUT_LIMIT = 64 << 10     # bytes of the compiler's messages kept
FILE_LIMIT = 64 << 20       # bytes any one file written may reach
# The system's programs and libraries, which every build reads: /usr, the
# top folders this distribution has as folders or links, and (for awk, cc
# and friends, often links through /etc/alternatives) two files of /etc.
SYSTEM_TOPS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SYSTEM_ETC = ("/etc/alternatives", "/etc/ld.so.cache")
SYSTEM = ("/usr",) + SYSTEM_TOPS + SYSTEM_ETC


class SandboxError(Exception):
    """No sandbox can be made here: the message says what to do."""


@functools.lru_cache(maxsize=None)
def available():
    """Whether bubblewrap is here and works (it needs user namespaces)."""
    if not shutil.which("bwrap"):
        return False
    # The probe is the real command line, so that what it cannot do here
    # (a user namespace, a mount) is found before a student's build is.
    with tempfile.TemporaryDirectory() as d:
        probe = subprocess.run(command(["true"], [], d), capture_output=True)
    return probe.returncode == 0


@functools.lru_cache(maxsize=None)
def jail_available():
    """Whether the jail can be made here: root, with chroot allowed."""
    if os.geteuid() != 0:
        return False
    with tempfile.TemporaryDirectory() as d:
        probe = subprocess.run(["true"], preexec_fn=lambda: os.chroot("/"), capture_output=True,
                               cwd=d)
    return probe.returncode == 0


@functools.lru_cache(maxsize=None)
def tier():
    """The tier that builds students' code here: bubblewrap where it works,
    else the jail; raises SandboxError if neither can."""
    want = os.environ.get("KDKIT_SANDBOX", "")
    if want and want not in TIERS:
        raise SandboxError(f"KDKIT_SANDBOX={want} is not a sandbox; use bubblewrap or jail, "
                           "or unset it to take the first that works")
    if want != "jail" and available():
        return "bubblewrap"
    if want != "bubblewrap" and jail_available():
        return "jail"
    if want == "jail":
        raise SandboxError("KDKIT_SANDBOX=jail needs root and chroot; grade as root, "
                           "or unset KDKIT_SANDBOX")
    if not shutil.which("bwrap"):
        raise SandboxError("grading builds students' code only in a sandbox: bubblewrap is "
                           "missing and the grader is not root (the other sandbox needs root); "
                           "run 'make setup' (it installs bubblewrap), or grade as root")
    raise SandboxError(f"bubblewrap cannot make a sandbox here ({userns_block()}), "
                       "and the grader is not root, which the other sandbox needs; grading "
                       "refuses to build students' code without one: grade as root")


# Switches that keep an unprivileged user from making user namespaces:
# (sysctl, the value that does, one that does not). Ubuntu 23.10 and
# later (AppArmor), Debian's older kernels, and any kernel's count.
PROC_SYS = "/proc/sys"
USERNS_SWITCHES = (("kernel.apparmor_restrict_unprivileged_userns", "1", "0"),
                   ("kernel.unprivileged_userns_clone", "0", "1"),
                   ("user.max_user_namespaces", "0", "10000"))


def userns_block():
    """Why bubblewrap may have failed, as a sysctl to change, if one says."""
    for name, blocking, fix in USERNS_SWITCHES:
        with contextlib.suppress(OSError), open(os.path.join(PROC_SYS, *name.split("."))) as f:
            if f.read().strip() == blocking:
                return f"{name} is {blocking}: 'sudo sysctl {name}={fix}' allows it"
    return "are user namespaces disabled?"


def require():
    tier()


def jail_root():
    return os.path.join(kernel_source.CACHE, "jail")


@contextlib.contextmanager
def session(build_dir):
    """(side, link): the folders one sandboxed build works in, seen inside
    as /build and /link; after the session they are build_dir/sandbox and
    build_dir/link. The jail has them at fixed places, one build at a time."""
    side, link = os.path.join(build_dir, "sandbox"), os.path.join(build_dir, "link")
    if tier() != "jail":
        yield side, link
        return
    root = jail_root()
    os.makedirs(os.path.dirname(root), exist_ok=True)
    with jail.lock(root):
        inside = [os.path.join(root, "build"), os.path.join(root, "link")]
        for d in inside:
            shutil.rmtree(d, ignore_errors=True)
        try:
            yield tuple(inside)
        finally:
            for d, out in zip(inside, (side, link)):
                shutil.rmtree(out, ignore_errors=True)
                if os.path.isdir(d):
                    shutil.move(d, out)
                os.makedirs(d, exist_ok=True)


def _system():
    """bwrap's arguments for SYSTEM, read-only."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in SYSTEM_TOPS:
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for etc in SYSTEM_ETC:
        args += ["--ro-bind-try", etc, etc]
    return args


def command(cmd, read_only, writable, inside="/build"):
    """bwrap's command line: read_only paths at their own place, the one
    writable folder at `inside`, which is also the working folder."""
    # No /proc: a compiler needs none, and a new one cannot be mounted in a
    # container whose own /proc is partly covered.
    args = ["bwrap", *_system(), "--dev", "/dev", "--tmpfs", "/tmp",
            "--unshare-all", "--uid", str(jail.NOBODY), "--gid", str(jail.NOBODY),
            "--cap-drop", "ALL",
            "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    for path in read_only:
        args += ["--ro-bind", path, path]
    args += ["--bind", writable, inside, "--chdir", inside]
    return args + list(cmd)


def _limits():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def start(cmd, read_only, writable, inside="/build"):
    """Start cmd in the sandbox; finish() collects it. Its messages go to
    a file, which the output limit caps. In the jail, writable must be the
    folder session() gave for inside."""
    log = tempfile.TemporaryFile()
    env = {"PATH": "/usr/bin:/bin", "HOME": inside, "LANG": "C.UTF-8", "TMPDIR": "/tmp"}
    if tier() == "jail":
        root = jail_root()
        if os.path.realpath(writable) != os.path.realpath(os.path.join(root, inside.lstrip("/"))):
            raise SandboxError(f"the jail builds in {inside} only, not {writable}")
        jail.prepare(root, SYSTEM + tuple(read_only), system=SYSTEM)
        jail.give(writable)
        cmd, preexec = list(cmd), functools.partial(jail.enter, root, inside, _limits)
    else:
        cmd, preexec = command(cmd, read_only, writable, inside), _limits
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            env=env, preexec_fn=preexec, start_new_session=True)
    return proc, log


def time_limit():
    """Seconds a build may take here: TIME_LIMIT on one CPU, longer on less."""
    return TIME_LIMIT * machine.slowness()


def finish(started, timeout=None):
    """(returncode, messages, why): why says which limit ended it, or ''."""
    proc, log = started
    timeout = timeout or time_limit()
    why = ""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        why = f"the build took longer than {timeout:.0f} s and was stopped"
    log.seek(0, os.SEEK_END)
    size = log.tell()
    log.seek(0)
    text = log.read(OUTPUT_LIMIT).decode("utf-8", "replace")
    log.close()
    if size > OUTPUT_LIMIT:
        text += f"\n[{size - OUTPUT_LIMIT} more bytes of messages left out]\n"
    if not why and proc.returncode in (-signal.SIGKILL, -signal.SIGXFSZ, -signal.SIGSEGV):
        why = "the build ran out of its memory or file limit and was stopped"
    if not why and ("out of memory" in text or "virtual memory exhausted" in text):
        why = f"the build needed more than {MEMORY_LIMIT >> 30} GiB and was stopped"
    return proc.returncode, text, why


def prepare(trees):
    """Make the sandbox ready to build with trees read-only (the jail's
    tree, once); the tier's name."""
    which = tier()
    if which == "jail":
        jail.prepare(jail_root(), SYSTEM + tuple(trees), system=SYSTEM)
    return which
