"""Run a build of a student's code in a sandbox: bubblewrap, as nobody in a
user namespace of its own, with no capabilities, no network, stdin closed,
and only the folders it is given; within a time, a memory and an output
limit. What the student's file can #include, .incbin or otherwise reach
is exactly what is bound here."""
import functools
import os
import resource
import shutil
import signal
import subprocess
import tempfile

TIME_LIMIT = 60             # seconds a build may take
MEMORY_LIMIT = 2 << 30      # bytes of address space for each process
OUTPUT_LIMIT = 64 << 10     # bytes of the compiler's messages kept
FILE_LIMIT = 64 << 20       # bytes any one file written may reach
NOBODY = 65534


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


def require():
    if not shutil.which("bwrap"):
        raise SandboxError("grading builds students' code only in a sandbox, and bubblewrap is "
                           "missing; run 'make setup' (it installs bubblewrap)")
    if not available():
        raise SandboxError("bubblewrap cannot make a sandbox here (are user namespaces "
                           "disabled?); grading refuses to build students' code without one")


def _system():
    """The system's programs and libraries, read-only: /usr, and /bin,
    /lib... as the links or folders this distribution has."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    # awk, cc and friends are often links through /etc/alternatives.
    for etc in ("/etc/alternatives", "/etc/ld.so.cache"):
        args += ["--ro-bind-try", etc, etc]
    return args


def command(cmd, read_only, writable, inside="/build"):
    """bwrap's command line: read_only paths at their own place, the one
    writable folder at `inside`, which is also the working folder."""
    # No /proc: a compiler needs none, and a new one cannot be mounted in a
    # container whose own /proc is partly covered.
    args = ["bwrap", *_system(), "--dev", "/dev", "--tmpfs", "/tmp",
            "--unshare-all", "--uid", str(NOBODY), "--gid", str(NOBODY), "--cap-drop", "ALL",
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
    a file, which the output limit caps."""
    log = tempfile.TemporaryFile()
    env = {"PATH": "/usr/bin:/bin", "HOME": inside, "LANG": "C.UTF-8", "TMPDIR": "/tmp"}
    proc = subprocess.Popen(command(cmd, read_only, writable, inside), stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT, env=env,
                            preexec_fn=_limits, start_new_session=True)
    return proc, log


def finish(started, timeout=TIME_LIMIT):
    """(returncode, messages, why): why says which limit ended it, or ''."""
    proc, log = started
    why = ""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        why = f"the build took longer than {timeout} s and was stopped"
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
