"""Boot each machine once, save it, and restore it for every run.

A run's machine is fixed by its kernel, its board (lab.Board) and the
flavour's memory; what changes between runs arrives on the payload disk
(vm.payload_disk). So the kit boots each machine once, lets /init reach
its wait for the payload, saves the VM with QEMU's migration to a file,
and every later run starts QEMU with -incoming from that file and its own
payload disk.

The saved states live in the kernel's build directory (kdkit-vm/), so a
rebuilt or removed kernel takes its states along, and each is keyed by
everything that went into it: the QEMU command line with the run's files
left out, and the identity of the kernel image, /init, busybox and QEMU.
A state that cannot be made or restored is never used again; the run
boots cold with a one-line note.
"""
import contextlib
import fcntl
import glob
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from harness import lifetime, machine, vm

HERE = os.path.dirname(os.path.abspath(__file__))
# What /init says on the results channel while it waits for a payload.
WAITING = "kdkit: waiting for the payload"
FORMAT = "1"    # bump when the way a state is made changes
# Seconds a boot to save may take: the kit's own boot, never a student's
# module, so not KDKIT_TIMEOUT (the strict kernel boots in about 9 s on a
# CPU; on half a CPU, a quota of 0.5, the limit doubles).
SAVE_LIMIT = 120


def _identity(path):
    """A file as a build tool knows it: path, size and time to the second.
    Not its inode, nor the time's fraction: a container image's layers give
    every file a new inode and drop the fraction (Docker's layer tars), and
    the VMs a Gradescope image saves at build time must be found at run time."""
    st = os.stat(path)
    return f"{path}:{st.st_size}:{int(st.st_mtime)}"


def _sha(*parts):
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def store(kernel_dir):
    return os.path.join(kernel_dir, "kdkit-vm")


def initramfs(kernel_dir):
    """The guest's root file system for this kernel, written once: it holds
    only busybox and /init, the same for every run."""
    with open(os.path.join(HERE, "init"), "rb") as f:
        init = hashlib.sha256(f.read()).hexdigest()
    out = os.path.join(store(kernel_dir), f"initrd-{_sha(init, _identity(vm.busybox()))}.cpio")
    if not os.path.isfile(out):
        os.makedirs(store(kernel_dir), exist_ok=True)
        tmp = f"{out}.{os.getpid()}.{threading.get_ident()}"
        vm.initramfs(kernel_dir, tmp)
        os.replace(tmp, out)
        for old in glob.glob(os.path.join(store(kernel_dir), "initrd-*.cpio")):
            if old != out:    # from an older /init or busybox
                with contextlib.suppress(OSError):
                    os.unlink(old)
    return out


def _label(board):
    """A machine's name in the store: its devices and vCPUs. No name is
    another's followed by '-', which would make saving one forget the other."""
    return ("+".join(board.devices) or "plain") + (f"x{board.cpus}" if board.cpus > 1 else "")


def state_path(kernel_dir, board, accel="tcg"):
    """Where the machine's state is saved, keyed by the machine as QEMU
    sees it (its command line, the run's own files left out) and by the
    kernel image and QEMU it was made with."""
    cmd = vm.command(kernel_dir, initramfs(kernel_dir), "@payload", "@console", "@results",
                     board, "@workdir", accel, ram=("@ram", False))
    kernel = os.path.join(kernel_dir, "arch", "x86", "boot", "bzImage")
    key = _sha(FORMAT, *cmd, _identity(kernel), _identity(shutil.which(vm.QEMU)))
    return os.path.join(store(kernel_dir), f"{_label(board)}-{key}.state")


def ram_file(state):
    """The saved guest RAM that goes with a saved state."""
    return state[:-len(".state")] + ".ram"


def restore_args(state):
    """vm.command's arguments that restore state (with the QMP commands
    vm.qmp_restore): its devices from the stream, its RAM mapped copy on
    write, so a restore reads only the pages the run touches."""
    return {"incoming": state, "ram": (ram_file(state), False)}


class SaveError(Exception):
    """The booted machine could not be saved; the message says why."""


def save(kernel_dir, board, accel, state, timeout):
    """Boot the machine with an empty payload disk, wait for /init to ask
    for a payload, and save the running VM into state."""
    work = tempfile.mkdtemp(prefix="save-", dir=store(kernel_dir))
    try:
        payload = os.path.join(work, "payload.img")
        vm.empty_disk(payload)
        results = os.path.join(work, "results.log")
        console = os.path.join(work, "console.log")
        ram = os.path.join(work, "ram")
        cmd = vm.command(kernel_dir, initramfs(kernel_dir), payload, console, results,
                         board, work, accel, ram=(ram, True))
        deadline = time.monotonic() + timeout
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, preexec_fn=lifetime.bound())
        # Killed at the deadline whatever it is doing, so no read blocks past it.
        guard = threading.Timer(timeout, proc.kill)
        guard.start()
        try:
            send = vm.Qmp(proc).send
            while not os.path.exists(results) or WAITING not in open(results, errors="replace").read():
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = open(console, errors="replace").read().splitlines()[-3:] \
                        if os.path.exists(console) else []
                    raise SaveError("the guest did not reach its wait for a payload"
                                    + (f": {' / '.join(tail)}" if tail else ""))
                time.sleep(0.01)
            # Saved running: the restored guest carries on polling at once.
            # The RAM stays in its file; the stream holds the devices.
            # QEMU's "completed" means its pipe to cat is closed, not that
            # the file is whole: cat's last step says that.
            tmp, whole = os.path.join(work, "state"), os.path.join(work, "whole")
            send("migrate-set-capabilities",
                 capabilities=[{"capability": "x-ignore-shared", "state": True}])
            send("migrate", uri=f"exec:cat > {shlex.quote(tmp)} && touch {shlex.quote(whole)}")
            while not os.path.exists(whole):
                status = send("query-migrate").get("status")
                if status in ("failed", "cancelled") or time.monotonic() > deadline:
                    raise SaveError(f"QEMU's migration {status}")
                time.sleep(0.01)
            with contextlib.suppress(vm.VmError):
                send("quit")
            proc.wait()
            _sparsify(ram)
            os.replace(ram, ram_file(state))
            os.replace(tmp, state)
        finally:
            guard.cancel()
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _sparsify(path):
    """Punch out the file's zero blocks (util-linux's fallocate): the guest
    zeroes what it frees, and zeros need no disk."""
    with contextlib.suppress(OSError):
        subprocess.run(["fallocate", "--dig-holes", path], capture_output=True)


def _copy_up(path):
    """Open the saved RAM for writing here, as QEMU will: in a container
    whose image holds it (Gradescope's, saved by setup.sh), the first
    such open copies the file up from the image's layer, and that copy
    would break QEMU's file size limit (vm.OUTPUT_LIMIT) and kill it."""
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_RDWR))


_said = set()
_forgotten = set()


def _note(text):
    """One line on stderr, once per process: a lab's VMs would repeat it."""
    if text not in _said:
        _said.add(text)
        print(f"kdkit: {text}", file=sys.stderr, flush=True)


def _no_state(why):
    _note(f"no saved VM ({why}); booting cold")


def saved(kernel_dir, board, accel, timeout=None):
    """The saved state for this machine, made now if there is none; None
    (with a note) where it cannot be made: the run boots cold. KDKIT_COLD=1
    boots every run cold."""
    if accel != "tcg" or os.environ.get("KDKIT_COLD") == "1":
        return None    # KVM boots fast, and its state depends on the host CPU
    try:
        os.makedirs(store(kernel_dir), exist_ok=True)
        state = state_path(kernel_dir, board, accel)
        with open(state + ".lock", "w") as lock:
            # Two runs that both find no state (JOBS=2) make it once.
            fcntl.flock(lock, fcntl.LOCK_EX)
            if os.path.isfile(state):
                _copy_up(ram_file(state))
                return state
            if os.path.isfile(state + ".failed"):
                with open(state + ".failed") as f:
                    _no_state(f.read().strip())
                return None
            for old in os.listdir(store(kernel_dir)):
                # Other states of this machine come from older inputs.
                if old.startswith(_label(board) + "-") and not old.startswith(os.path.basename(state)):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(store(kernel_dir), old))
            start = time.monotonic()
            try:
                save(kernel_dir, board, accel, state,
                     timeout or SAVE_LIMIT * machine.slowness())
            except (SaveError, vm.VmError) as e:
                why = f"the booted VM could not be saved: {e}"
                with open(state + ".failed", "w") as f:
                    f.write(f"{why}\n")
                _no_state(why)
                return None
            disk = sum(os.stat(f).st_blocks * 512 for f in (state, ram_file(state)))
            _note(f"booted this machine once and saved it for later runs "
                  f"({time.monotonic() - start:.1f} s, {disk >> 20} MB)")
            return state
    except OSError as e:
        _no_state(f"{e.strerror}: {e.filename}")
        return None


def forget(state, why):
    """A state that did not restore is never tried again; said once, though
    the lab's other VMs may fail to restore it too."""
    if state in _forgotten:
        return
    _forgotten.add(state)
    why = f"the saved VM did not restore: {why}"
    with contextlib.suppress(OSError):
        os.unlink(state)
    with contextlib.suppress(OSError), open(state + ".failed", "w") as f:
        f.write(f"{why}\n")
    _no_state(why)
