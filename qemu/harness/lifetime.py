"""Processes the harness starts (QEMU, gdb, inotifywait) end with it.

Killing a kdkit command (make debug, make shell, make watch, a grade) by
any signal, SIGKILL included, must not leave its QEMU running: each such
child asks the kernel to kill it when the thread that started it ends
(PR_SET_PDEATHSIG), and checks that this thread had not already gone.
"""
import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(None, use_errno=True)


def bound(then=None):
    """A preexec_fn for subprocess: the child dies with its parent; then(),
    if given, runs after."""
    parent = os.getpid()

    def preexec():
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:      # the parent went before the prctl
            os._exit(1)
        if then:
            then()
    return preexec


def adopt_orphans():
    """Make this process the one orphans of its descendants are given to,
    so that leftovers() can find them."""
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def leftovers():
    """[(pid, command)] of this process's children still alive (zombies,
    already ended, left out)."""
    found = []
    me = os.getpid()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if int(rest[1]) == me and rest[0] != "Z":
            found.append((int(pid), comm))
    return found
