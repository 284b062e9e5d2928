"""What the harness starts ends with it: killing a kdkit command, by any
signal, ends its QEMU; make check finds what outlived it."""
import os
import signal
import subprocess
import sys
import time

from harness import lab

KIT = lab.KIT
# Bounds for a loaded two-core machine; each wait ends at its event.
START_WAIT = 300
END_WAIT = 60


def _children(pid, name):
    return [int(p) for p, comm, ppid in _procs() if ppid == pid and comm.startswith(name)]


def _procs():
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        yield pid, comm, int(stat[stat.rindex(")") + 2:].split()[1])


def _alive(pid):
    try:
        return open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _until(what, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        got = what()
        if got:
            return got
        time.sleep(0.05)
    return what()


def test_killing_a_shell_ends_its_qemu():
    """make shell's QEMU would run until its shell is left: killing the
    kdkit that started it (SIGKILL, which nothing can catch) ends it too."""
    proc = subprocess.Popen([sys.executable, "qemu/kdkit.py", "shell", "hello", "--src", "solutions"],
                            cwd=KIT, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    # Piped input is read whole before QEMU starts: the guest then waits.
    proc.stdin.write(b"sleep 600\n")
    proc.stdin.close()
    try:
        qemu = _until(lambda: _children(proc.pid, "qemu-system"), START_WAIT)
        assert qemu, "no QEMU started"
    finally:
        proc.kill()
        proc.wait()
    try:
        assert _until(lambda: not any(_alive(q) for q in qemu), END_WAIT), \
            f"QEMU {qemu} outlived the kdkit that started it"
    finally:
        for q in qemu:
            if _alive(q):
                os.kill(q, signal.SIGKILL)


def test_an_orphan_comes_back_to_make_check_and_is_named():
    code = ("import subprocess, sys\nsys.path.insert(0, 'qemu')\nfrom harness import lifetime\n"
            "lifetime.adopt_orphans()\n"
            "subprocess.run(['sh', '-c', 'sleep 30 & exit 0'])\n"
            "import time\nend = time.monotonic() + 30\n"
            "while not lifetime.leftovers() and time.monotonic() < end: time.sleep(0.05)\n"
            "left = lifetime.leftovers()\nprint(left)\n"
            "import os, signal\n[os.kill(p, signal.SIGKILL) for p, _c in left]\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=KIT, capture_output=True, text=True).stdout
    assert "'sleep')" in out, out
