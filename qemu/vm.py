"""Boot the kit kernel in QEMU with a plan, bounded in time, and collect
the two channels: the console (kernel log) and the results (ttyS1)."""
import functools
import os
import resource
import shutil
import signal
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
QEMU = "qemu-system-x86_64"
BUSYBOX_PLACES = ("/bin/busybox", "/usr/bin/busybox", "/usr/sbin/busybox", "/sbin/busybox")

# Oops, soft lockups and hung tasks panic; a panic exits QEMU (-no-reboot).
# init_on_free zeroes freed memory, so that even the fast kernel notices a
# use after free as list corruption (DEBUG_LIST) rather than stale data.
CMDLINE = ("console=ttyS0 quiet panic=-1 oops=panic softlockup_panic=1 "
           "watchdog_thresh=2 8250.nr_uarts=2 init_on_free=1 rdinit=/init")


class VmError(Exception):
    """The VM could not be started: the message says what to do next."""


class HardwareError(Exception):
    """An emulated device stopped QEMU; the message is QEMU's line."""


def _dynamic(path):
    """Whether an ELF file asks for a loader (a PT_INTERP program header)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            return True
        phoff = int.from_bytes(head[32:40], "little")
        phentsize = int.from_bytes(head[54:56], "little")
        phnum = int.from_bytes(head[56:58], "little")
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return any(int.from_bytes(table[i:i + 4], "little") == 3
               for i in range(0, len(table), phentsize))


@functools.lru_cache(maxsize=None)
def busybox():
    """The guest's userland: a statically linked busybox, wherever the
    distribution puts it."""
    places = [p for p in (shutil.which("busybox"), *BUSYBOX_PLACES) if p and os.path.isfile(p)]
    for p in places:
        if not _dynamic(p):
            return p
    if places:
        raise VmError(f"{places[0]} is linked dynamically and cannot run in the guest; "
                      "install busybox-static (Debian, Ubuntu) or busybox (Fedora)")
    raise VmError("busybox is missing; run 'make setup'")


@functools.lru_cache(maxsize=None)
def firmware():
    """QEMU options for the BIOS: qboot, which boots a little faster, where
    this QEMU ships it; its default SeaBIOS otherwise."""
    dirs = subprocess.run([QEMU, "-L", "help"], capture_output=True, text=True).stdout.split()
    for d in dirs:
        if os.path.isfile(os.path.join(d, "qboot.rom")):
            return ["-bios", os.path.join(d, "qboot.rom")]
    return []


def initramfs(kernel_dir, out, plan, modules, tools=(), secret=None):
    """Write an uncompressed initramfs: busybox, /init, the plan, modules
    and programs in /kdkit, tools in /usr/bin, and the run's secret, which
    /init reads and deletes before it loads any module (results.py)."""
    gen = os.path.join(kernel_dir, "usr", "gen_init_cpio")
    bb = busybox()
    applets = subprocess.run([bb, "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    spec = ["dir /dev 0755 0 0", "nod /dev/console 0600 0 0 c 5 1",
            "dir /bin 0755 0 0", "dir /sbin 0755 0 0", "dir /usr 0755 0 0",
            "dir /usr/bin 0755 0 0", "dir /usr/sbin 0755 0 0",
            "dir /proc 0755 0 0", "dir /sys 0755 0 0", "dir /tmp 1777 0 0",
            "dir /kdkit 0755 0 0",
            f"file /bin/busybox {bb} 0755 0 0",
            f"file /init {os.path.join(HERE, 'init')} 0755 0 0"]
    spec += [f"slink /{a} /bin/busybox 0777 0 0" for a in applets if a != "bin/busybox"]
    plan_path = out + ".plan"
    with open(plan_path, "w") as f:
        f.write(plan)
    spec.append(f"file /kdkit/plan {plan_path} 0644 0 0")
    if secret:
        secret_path = out + ".secret"
        with open(secret_path, "w") as f:
            f.write(secret + "\n")
        spec.append(f"file /kdkit/secret {secret_path} 0600 0 0")
    for m in modules:
        spec.append(f"file /kdkit/{os.path.basename(m)} {m} 0755 0 0")
    for t in tools:
        spec.append(f"file /usr/bin/{os.path.basename(t)} {t} 0755 0 0")
    spec_path = out + ".list"
    with open(spec_path, "w") as f:
        f.write("\n".join(spec) + "\n")
    with open(out, "wb") as f:
        subprocess.run([gen, spec_path], stdout=f, check=True)


def gpio_file(workdir):
    """The fsled board's GPIO banks: QEMU's ivshmem memory, a host file."""
    return os.path.join(workdir, "gpio.mem")


def board_args(board, workdir):
    """QEMU options for a lab's board (lab.Board)."""
    args = ["-smp", str(board.cpus)]
    if "gpio" in board.devices:
        args += ["-object", "memory-backend-file,id=gpio,share=on,size=8M,"
                 f"mem-path={gpio_file(workdir)}",
                 "-device", "ivshmem-plain,memdev=gpio"]
    if "edu" in board.devices:
        args += ["-device", "edu"]
    if board.icount:
        args += ["-icount", "shift=auto,sleep=off"]
    return args


def command(kernel_dir, initrd, console, results, board, workdir, strict=False,
            accel="tcg", interactive=False):
    if not shutil.which(QEMU):
        raise VmError(f"{QEMU} is missing; run 'make setup'")
    kernel = os.path.join(kernel_dir, "arch", "x86", "boot", "bzImage")
    cmd = [QEMU, "-nodefaults", "-no-user-config", "-machine", "pc",
           "-accel", accel, "-cpu", "max" if accel == "tcg" else "host",
           "-m", board.memory or ("1G" if strict else "256M"), *board_args(board, workdir),
           *firmware(), "-kernel", kernel, "-initrd", initrd,
           "-append", " ".join(filter(None, (CMDLINE, board.cmdline))), "-display", "none", "-no-reboot",
           "-serial", "mon:stdio" if interactive else f"file:{console}",
           "-serial", f"file:{results}"]
    return cmd


# No file QEMU writes (the kernel log, the results) may grow past this: a
# driver that floods the log fills no disk, and its run ends.
OUTPUT_LIMIT = 16 << 20


def _limit_output():
    resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_LIMIT, OUTPUT_LIMIT))


def boot(cmd, timeout):
    """Run QEMU to its end or the time limit. Returns (seconds, timed_out)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_limit_output)
    try:
        _out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return time.monotonic() - start, True
    if proc.returncode == -signal.SIGXFSZ:
        return time.monotonic() - start, False    # the output limit; see OUTPUT_LIMIT
    if proc.returncode != 0 and err.strip():
        # A device model that gives up (edu on a DMA out of its buffer)
        # aborts QEMU: the driver under test crashed the machine.
        hw = [l for l in err.splitlines() if l.startswith("qemu: hardware error:")]
        if hw:
            raise HardwareError(hw[0])
        raise VmError(f"QEMU failed: {err.strip().splitlines()[-1]}")
    return time.monotonic() - start, False
