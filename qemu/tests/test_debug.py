"""make debug and make gdb: gdb stops in the student's function, on their
source line, and prints their variables."""
import glob
import os
import subprocess
import sys
import time

import kdkit
from harness.lab import KIT



def test_gdb_stops_in_a_lab_function_on_its_source_line():
    before = set(glob.glob(os.path.join(kdkit.shell_dirs(), "vser-*")))
    # The guest's shell keeps reading the port, so that vser_read() runs
    # whenever gdb is ready.
    loop = b"while true; do echo x > /dev/vser0; dd if=/dev/vser0 bs=64 count=1 2>/dev/null; " \
           b"sleep 0.3; done\n"
    vm = subprocess.Popen([sys.executable, os.path.join(KIT, "qemu", "kdkit.py"), "debug", "vser",
                           "--src", os.path.join(KIT, "solutions")],
                          stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        vm.stdin.write(loop)
        vm.stdin.close()
        script = None
        # The script comes once the VM has booted cold and said where the
        # module is: kdkit waits SHELL_WAIT for that, after the build.
        deadline = time.monotonic() + 2 * kdkit.SHELL_WAIT
        while vm.poll() is None and time.monotonic() < deadline:
            new = set(glob.glob(os.path.join(kdkit.shell_dirs(), "vser-*"))) - before
            found = [os.path.join(d, "gdbinit") for d in new if os.path.exists(os.path.join(d, "gdbinit"))]
            if found:
                script = found[0]
                break
            time.sleep(0.1)
        assert script, "make debug never wrote its gdb script"
        out = subprocess.run(["gdb", "-q", "-batch", "-x", script, "-ex", "break vser_read",
                              "-ex", "continue", "-ex", "print count", "-ex", "next",
                              "-ex", "info locals", "-ex", "kill"],
                             capture_output=True, text=True, timeout=120).stdout
    finally:
        vm.kill()
        vm.wait()
    src = open(os.path.join(KIT, "solutions", "vser", "vser.c")).read().splitlines()
    first = next(i for i, l in enumerate(src, 1) if l.startswith("static ssize_t vser_read("))
    hit = next(l for l in out.splitlines() if "hit Breakpoint 1, vser_read (" in l)
    line = int(hit.rsplit(":", 1)[1])
    assert hit.split(" at ")[1].startswith("/") and "vser.c:" in hit
    assert first < line < first + 10
    assert "$1 = 64" in out                      # the read's count, a parameter
    assert "vdev = 0x" in out and "copied = " in out   # locals, after a step
