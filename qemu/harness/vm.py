"""Boot the kit kernel in QEMU with a plan, bounded in time, and collect
the two channels: the console (kernel log) and the results (ttyS1)."""
import contextlib
import functools
import json
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import threading
import time

from harness import lifetime

HERE = os.path.dirname(os.path.abspath(__file__))
QEMU = "qemu-system-x86_64"
BUSYBOX_PLACES = ("/bin/busybox", "/usr/bin/busybox", "/usr/sbin/busybox", "/sbin/busybox")

# Oops, soft lockups and hung tasks panic; a panic exits QEMU (-no-reboot).
# init_on_free zeroes freed memory, so that even the fast kernel notices a
# use after free as list corruption (DEBUG_LIST) rather than stale data.
CMDLINE = ("console=ttyS0 quiet panic=-1 oops=panic softlockup_panic=1 "
           "watchdog_thresh=2 8250.nr_uarts=2 init_on_free=1 rdinit=/init")
# kmemleak is for make shell. In a test run it never scans, yet it records
# every allocation, and its own allocations are fault-injection points that
# doubled every error-path sweep. The kmalloc caches are poisoned (0x6b on
# free, checked on the next allocation, and no init_on_free zeroing): a
# driver that takes kmalloc() for kzalloc() finds garbage, not zeroes that
# hide its mistake, and a write after free is reported.
TEST_CMDLINE = "kmemleak=off slub_debug=P,kmalloc-*"
# Guest RAM, on both kernels: KASAN's shadow takes an eighth, and the
# suites need little of the rest. It must not exceed 256 MB, the reach of
# edu's 28 address lines (the dma lab's swiotlb sits high in RAM); and a
# grade must fit Gradescope's default 768 MB container, which killed the
# strict kernel's 1 GB guests.
MEMORY = "256M"


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


def _cpio(kernel_dir, spec, out):
    gen = os.path.join(kernel_dir, "usr", "gen_init_cpio")
    with open(out + ".list", "w") as f:
        f.write("\n".join(spec) + "\n")
    with open(out, "wb") as f:
        subprocess.run([gen, out + ".list"], stdout=f, check=True)
    os.unlink(out + ".list")


def initramfs(kernel_dir, out):
    """Write the guest's root file system, the same for every run: busybox
    and /init, which waits for the run's payload (payload_disk)."""
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
    _cpio(kernel_dir, spec, out)


# The payload disk's size: fixed, because a guest saved after boot knows
# the size the disk had then. Sparse, so it costs only what is written.
PAYLOAD_DISK = 256 << 20


def empty_disk(out):
    """A payload disk with no payload yet: a guest on it waits (see
    payload_disk)."""
    with open(out, "wb") as disk:
        disk.truncate(PAYLOAD_DISK)


# The header's room, which /init wipes: the tokens fit in it.
HEADER_MAX = 8 * 4096


def payload_disk(kernel_dir, out, plan, modules, tools=(), tokens=("-",)):
    """Write the run's payload disk, or fill an empty_disk that a guest may
    already be waiting on: a header line with the run's one-time tokens,
    which /init wipes before it loads any module (results.py), then a cpio
    of the plan and modules and programs in /kdkit, tools in /usr/bin."""
    with open(out + ".plan", "w") as f:
        f.write(plan)
    spec = [f"file /kdkit/plan {out}.plan 0644 0 0"]
    spec += [f"file /kdkit/{os.path.basename(m)} {m} 0755 0 0" for m in modules]
    spec += [f"file /usr/bin/{os.path.basename(t)} {t} 0755 0 0" for t in tools]
    _cpio(kernel_dir, spec, out + ".cpio")
    os.unlink(out + ".plan")
    header = f"KDKITPAY {' '.join(tokens)}\n".encode()
    assert len(header) <= HEADER_MAX
    size = len(header) + os.path.getsize(out + ".cpio")
    if size > PAYLOAD_DISK:
        raise VmError(f"the run's modules and programs take {size >> 20} MB, more than the "
                      f"{PAYLOAD_DISK >> 20} MB the guest's payload disk holds")
    if not os.path.exists(out):
        empty_disk(out)
    with open(out, "r+b") as disk, open(out + ".cpio", "rb") as cpio:
        disk.seek(len(header))
        shutil.copyfileobj(cpio, disk)
        # The header last: a waiting guest must not see it before the cpio.
        disk.flush()
        disk.seek(0)
        disk.write(header)
    os.unlink(out + ".cpio")


def gpio_file(workdir):
    """The fsled board's GPIO banks in a shell: QEMU's ivshmem memory, a
    host file, which the LED panel reads."""
    return os.path.join(workdir, "gpio.mem")


def board_args(board, workdir, panel=False):
    """QEMU options for a lab's board (lab.Board); panel: the GPIO banks
    in a host file (gpio_file), else in QEMU's own memory, which a saved
    VM holds (snapshot.py)."""
    args = ["-smp", str(board.cpus)]
    if "gpio" in board.devices:
        memory = (f"memory-backend-file,share=on,mem-path={_file_arg(gpio_file(workdir))}"
                  if panel else "memory-backend-ram")
        args += ["-object", f"{memory},id=gpio,size=8M",
                 # master: QEMU saves the memory of a master only.
                 "-device", "ivshmem-plain,memdev=gpio,master=on"]
    if "edu" in board.devices:
        args += ["-device", "edu"]
    if board.icount:
        args += ["-icount", "shift=auto,sleep=off"]
    return args


def _file_arg(path):
    return path.replace(",", ",,")


def command(kernel_dir, initrd, payload, console, results, board, workdir,
            accel="tcg", interactive=False, incoming=None, ram=None):
    """The QEMU command line. Only the files differ from run to run (the
    payload disk, the two serial channels, the GPIO memory): the machine
    is the same, so that a VM saved by one (incoming) can be restored by
    another. ram=(file, shared) puts the guest's RAM in a file: shared to
    save it, private (copy on write) to restore it (snapshot.py)."""
    if not shutil.which(QEMU):
        raise VmError(f"{QEMU} is missing; run 'make setup'")
    kernel = os.path.join(kernel_dir, "arch", "x86", "boot", "bzImage")
    cmd = [QEMU, "-nodefaults", "-no-user-config", "-machine", "pc",
           "-accel", accel, "-cpu", "max" if accel == "tcg" else "host",
           "-m", MEMORY, *board_args(board, workdir, interactive),
           *firmware(), "-kernel", kernel, "-initrd", initrd,
           "-append", " ".join(filter(None, (CMDLINE, TEST_CMDLINE if not interactive else "",
                                              board.cmdline))), "-display", "none", "-no-reboot",
           "-drive", f"file={_file_arg(payload)},format=raw,if=none,id=payload",
           "-device", "virtio-blk-pci,drive=payload",
           "-serial", "mon:stdio" if interactive else f"file:{console}",
           "-serial", f"file:{results}"]
    if ram:
        path, shared = ram
        cmd += ["-object", f"memory-backend-file,id=ram,size={MEMORY},"
                f"mem-path={_file_arg(path)},share={'on' if shared else 'off'}",
                "-machine", "memory-backend=ram"]
    if incoming:
        # The stream comes by QMP (qmp_restore). Loaded, the VM stays
        # paused (-S) until boot() has its payload ready: a VM waiting for
        # its lab's build costs no CPU.
        cmd += ["-S", "-incoming", "defer"]
    if incoming or ram:
        cmd += ["-chardev", "stdio,id=qmp", "-mon", "chardev=qmp,mode=control"]
    return cmd


# Seconds a saved VM may take to load (it takes milliseconds).
RESTORE_LIMIT = 10


def qmp_restore(state):
    """The QMP commands that load a saved state into a QEMU started with
    command(incoming=...): its RAM is its file, not in the stream."""
    return [("migrate-set-capabilities", {"capabilities": [{"capability": "x-ignore-shared",
                                                            "state": True}]}),
            # cat's messages go nowhere: an inherited stderr would keep our
            # pipe from QEMU open for as long as cat lived.
            ("migrate-incoming", {"uri": f"exec:exec cat {shlex.quote(state)} 2>/dev/null"})]


class Qmp:
    """A client of QEMU's monitor on its stdin and stdout (QMP), for a
    process that is killed if it overstays, so no read here blocks long."""

    def __init__(self, proc):
        self.proc = proc
        self._line()    # the greeting
        self.send("qmp_capabilities")

    def _line(self):
        line = self.proc.stdout.readline()
        if not line:
            raise VmError("QEMU exited while it was being told what to do")
        return json.loads(line)

    def wait_incoming(self, limit):
        """Wait for an incoming migration to load: a stream that is not
        there or stops must cost seconds, not the run's time limit."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            status = self.send("query-migrate").get("status")
            if status == "completed":
                return
            if status == "failed":
                break
            time.sleep(0.002)
        self.proc.kill()
        raise VmError("the saved VM did not load")

    def send(self, command, **arguments):
        try:
            self.proc.stdin.write(json.dumps({"execute": command, "arguments": arguments}) + "\n")
            self.proc.stdin.flush()
        except OSError:    # a broken pipe: it exited, and stderr says why
            raise VmError("QEMU exited while it was being told what to do") from None
        while True:
            msg = self._line()
            if "error" in msg:
                raise VmError(f"QEMU refused {command}: {msg['error'].get('desc', msg['error'])}")
            if "return" in msg:
                return msg["return"]


# No file QEMU writes (the kernel log, the results) may grow past this: a
# driver that floods the log fills no disk, and its run ends.
OUTPUT_LIMIT = 16 << 20


def _limit_output():
    resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_LIMIT, OUTPUT_LIMIT))


# What /init says on the results channel once it has the run's payload:
# the machine is up, booted or restored, and the run's own work begins.
STARTED = re.compile(rb"^kdkit: payload\r?$", re.M)


def _started(results):
    with contextlib.suppress(OSError), open(results, "rb") as f:
        return bool(STARTED.search(f.read(4096)))
    return False


def _ending(returncode):
    """How a process that said nothing ended; a kill is most often the
    out-of-memory killer's, in a container with a memory limit."""
    if returncode is None:
        return "it was still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


def boot(cmd, timeout, results=None, qmp=(), feed=None):
    """Run QEMU to its end or the time limit, after sending it the QMP
    commands qmp [(command, arguments)] and then calling feed(), which
    gives the waiting guest its payload (and may wait for the lab's build:
    its time is not the run's, nor is the wait counted), then resuming a
    VM started paused (-S). Returns (seconds,
    timed_out, seconds until the guest had the payload, or None if it never
    did: read from the results channel, if given)."""
    start = time.monotonic()
    pipe = subprocess.PIPE if qmp else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdin=pipe, stdout=pipe, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lifetime.bound(_limit_output))
    # Whatever QEMU or a read of its pipes is doing, it ends at the limit.
    expired = threading.Event()

    def guarded():
        timer = threading.Timer(timeout, lambda: (expired.set(), proc.kill()))
        timer.start()
        return timer
    guard = guarded()
    started = None
    try:
        if qmp:
            try:
                monitor = Qmp(proc)
                for command, arguments in qmp:
                    monitor.send(command, **arguments)
                if any(command == "migrate-incoming" for command, _ in qmp):
                    monitor.wait_incoming(min(RESTORE_LIMIT, timeout))
            except VmError as e:
                # Its pipe closes a moment before it can be reaped.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(1)
                ended = proc.returncode
                proc.kill()
                _out, err = proc.communicate()
                if expired.is_set():
                    return time.monotonic() - start, True, None
                said = err.strip().splitlines()
                raise VmError(f"QEMU failed: {said[-1]}" if said else f"{e} ({_ending(ended)})")
        if feed:
            guard.cancel()
            try:
                feed()
            except BaseException:
                proc.kill()
                proc.communicate()
                raise
            if proc.poll() is None:
                start, guard = time.monotonic(), guarded()
        if "-S" in cmd:
            # If it exited instead, its stderr says why (below).
            with contextlib.suppress(VmError):
                monitor.send("cont")
        while results and started is None and proc.poll() is None:
            time.sleep(0.005)
            if _started(results):
                started = time.monotonic() - start
        _out, err = proc.communicate()
    finally:
        guard.cancel()
    secs = time.monotonic() - start
    if started is None and results and _started(results):
        started = secs    # it ended before the poll above saw it
    if expired.is_set():
        return secs, True, started
    if proc.returncode == -signal.SIGXFSZ:
        return secs, False, started    # the output limit; see OUTPUT_LIMIT
    if proc.returncode != 0 and err.strip():
        # A device model that gives up (edu on a DMA out of its buffer)
        # aborts QEMU: the driver under test crashed the machine.
        hw = [l for l in err.splitlines() if l.startswith("qemu: hardware error:")]
        if hw:
            raise HardwareError(hw[0])
        raise VmError(f"QEMU failed: {err.strip().splitlines()[-1]}")
    return secs, False, started
