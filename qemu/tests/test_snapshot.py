"""Saved VMs (qemu/harness/snapshot.py): every run restores the booted machine,
a state is keyed by what went into it, and a state that cannot be made or
restored costs a cold boot and a one-line note, never a result. These boot
QEMU, so they need 'make setup' first."""
import contextlib
import os
import shutil
import subprocess

import pytest

from harness import lab, runner, snapshot
from harness.ktap import FAILED
from kernel import source as kernel_source

HERE = os.path.dirname(os.path.abspath(__file__))
KIT = lab.KIT
HELLO = os.path.join(KIT, "solutions", "hello")


@pytest.fixture
def own_store(tmp_path, monkeypatch):
    """Saved states in a folder of the test's own, not the kernel's; and
    notes said afresh (each is said once a process, and an earlier test's
    save may have said the very same words)."""
    store = tmp_path / "kdkit-vm"
    monkeypatch.setattr(snapshot, "store", lambda kernel_dir: str(store))
    monkeypatch.setattr(snapshot, "_said", set())
    return store


def run_hello(tmp_path, src=HELLO, **kw):
    return runner.run_lab("hello", src, bdir=str(tmp_path / "build"), runs=str(tmp_path), **kw)


def test_every_run_after_the_first_boot_is_a_restore(tmp_path, own_store, capsys):
    first = run_hello(tmp_path)
    assert "booted this machine once and saved it" in capsys.readouterr().err
    again = run_hello(tmp_path)
    for run in (first, again):
        assert run.outcome.counts()[FAILED] == 0
        assert run.restores == run.boots >= 1
    assert not capsys.readouterr().err    # nothing more to say
    kept = sorted(f for f in os.listdir(own_store) if f.endswith((".state", ".ram")))
    assert len(kept) == 2 and all(f.startswith("plain-") for f in kept)


def test_a_crash_costs_one_restore_not_a_boot(tmp_path, own_store):
    src = tmp_path / "src"
    src.mkdir()
    lab.patched_solution("hello", os.path.join(HERE, "fixtures", "hello-panic.patch"), str(src))
    run_hello(tmp_path)    # the state is made
    run = run_hello(tmp_path, src=str(src))
    crashed = [c for s in run.outcome.cases.values() for c in s.values() if c.status == "CRASHED"]
    # The fixture panics in init: each case that loads the module crashes.
    assert len(crashed) == len(dict(lab.expected_cases("hello"))["hello_module"])
    # Each crash was followed by a restored VM, not a boot.
    assert run.boots >= 3 and run.restores == run.boots


def test_kdkit_cold_boots_every_run(tmp_path, own_store, monkeypatch):
    monkeypatch.setenv("KDKIT_COLD", "1")
    run = run_hello(tmp_path)
    assert run.outcome.counts()[FAILED] == 0
    assert run.restores == 0 and run.boots >= 1
    assert not own_store.exists() or not [f for f in os.listdir(own_store) if f.endswith(".state")]


def test_a_state_that_does_not_restore_falls_back_to_a_cold_boot(tmp_path, own_store, capsys):
    kdir = kernel_source.kernel_dir("fast")
    state = snapshot.state_path(kdir, lab.board("hello"))
    with open(state, "wb") as f:
        f.write(b"QEVM\0\0\0\3 not a migration stream")
    shutil.copyfile(os.devnull, snapshot.ram_file(state))
    os.truncate(snapshot.ram_file(state), 256 << 20)
    run = run_hello(tmp_path)
    err = capsys.readouterr().err
    assert run.outcome.counts()[FAILED] == 0
    assert run.restores == 0
    # One note, though the lab's VMs run at once.
    notes = [l for l in err.splitlines() if "did not restore" in l]
    assert len(notes) == 1 and notes[0].endswith("booting cold"), notes
    assert os.path.exists(state + ".failed") and not os.path.exists(state)
    # It is never tried again: the next run boots cold at once.
    run = run_hello(tmp_path)
    assert run.restores == 0 and run.outcome.counts()[FAILED] == 0


def test_a_state_in_an_image_layer_restores(tmp_path, own_store, capsys):
    """Gradescope's image holds the VMs setup.sh saved, in a layer below
    the container's own (overlayfs), at the same path: QEMU's first write
    open of the RAM copies it up, which its file size limit must not stop."""
    run_hello(tmp_path)
    upper, work = tmp_path / "upper", tmp_path / "work"
    upper.mkdir()
    work.mkdir()
    # As an image's layer has it: Docker's layer archives keep no holes.
    lower = tmp_path / "lower"
    subprocess.run(["cp", "-r", "--sparse=never", str(own_store), str(lower)], check=True)
    shutil.rmtree(own_store)
    own_store.mkdir()
    mount = ["mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={lower},upperdir={upper},workdir={work}", str(own_store)]
    if os.geteuid() != 0 or subprocess.run(mount).returncode != 0:
        pytest.fail("this test needs root and overlayfs, as make check has here")
    try:
        capsys.readouterr()
        run = run_hello(tmp_path)
        err = capsys.readouterr().err
        assert "did not restore" not in err and "saved it" not in err, err
        assert run.restores == run.boots and run.outcome.counts()[FAILED] == 0
    finally:
        subprocess.run(["umount", str(own_store)], check=True)


def test_a_stream_that_never_comes_costs_seconds_not_the_time_limit(tmp_path, own_store, capsys,
                                                                      monkeypatch):
    """A restore whose stream is gone (removed by another run) or stalls:
    QEMU would wait for it until the run's limit."""
    run_hello(tmp_path)    # the state is made
    monkeypatch.setattr(runner, "TIMEOUT", 30)
    monkeypatch.setattr(snapshot.vm, "RESTORE_LIMIT", 2)
    stream = tmp_path / "stream"
    os.mkfifo(stream)    # cat waits on it for ever
    restore = snapshot.vm.qmp_restore
    monkeypatch.setattr(snapshot.vm, "qmp_restore", lambda state: restore(str(stream)))
    run = run_hello(tmp_path)
    # The cat QEMU started still waits on the FIFO: an end of file ends it.
    with contextlib.suppress(OSError):
        os.close(os.open(stream, os.O_WRONLY | os.O_NONBLOCK))
    assert run.outcome.counts()[FAILED] == 0 and run.restores == 0
    assert "the saved VM did not load" in capsys.readouterr().err
    assert run.start_secs + run.tests_secs < 30


def test_a_save_that_fails_is_remembered_and_the_run_still_passes(tmp_path, own_store, capsys,
                                                                  monkeypatch):
    monkeypatch.setattr(snapshot, "SAVE_LIMIT", 0.2)
    run = run_hello(tmp_path)
    assert run.outcome.counts()[FAILED] == 0 and run.restores == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not be saved" in err[0] and err[0].endswith("booting cold")
    assert [f for f in os.listdir(own_store) if f.endswith(".failed")]


def test_each_machine_keeps_a_state_of_its_own():
    # hello's machine and vser's differ only in vCPUs: saving one must not
    # forget the other's state, as a name that prefixes another would.
    boards = {lab.board(l) for l in lab.labs()}
    labels = {snapshot._label(b) for b in boards}
    assert len(labels) == len(boards)
    assert not [(a, b) for a in labels for b in labels if b.startswith(a + "-")]


def test_the_key_follows_the_machine_the_kernel_and_the_init(tmp_path, own_store, monkeypatch):
    kdir = kernel_source.kernel_dir("fast")
    plain = snapshot.state_path(kdir, lab.board("hello"))
    assert plain == snapshot.state_path(kdir, lab.Board())
    assert plain != snapshot.state_path(kernel_source.kernel_dir("strict"), lab.board("hello"))
    assert plain != snapshot.state_path(kdir, lab.board("fsled"))
    # Another /init: a state saved with the old one would wait for nothing.
    init = tmp_path / "qemu"
    init.mkdir()
    (init / "init").write_text(open(os.path.join(KIT, "qemu", "harness", "init")).read() + "# changed\n")
    monkeypatch.setattr(snapshot, "HERE", str(init))
    monkeypatch.setattr(snapshot.vm, "HERE", str(init))
    assert snapshot.state_path(kdir, lab.board("hello")) != plain
    # Another kernel image (a rebuild in the same place).
    monkeypatch.setattr(snapshot, "HERE", os.path.join(KIT, "qemu", "harness"))
    monkeypatch.setattr(snapshot.vm, "HERE", os.path.join(KIT, "qemu", "harness"))
    fake = tmp_path / "kernel"
    (fake / "arch" / "x86" / "boot").mkdir(parents=True)
    (fake / "usr").mkdir()
    os.symlink(os.path.join(kdir, "usr", "gen_init_cpio"), fake / "usr" / "gen_init_cpio")
    image = fake / "arch" / "x86" / "boot" / "bzImage"
    image.write_bytes(b"one")
    before = snapshot.state_path(str(fake), lab.board("hello"))
    # The same file under a new inode and with its time's fraction dropped,
    # as a container image's next layer has it: the same machine.
    shutil.copy2(image, tmp_path / "copy")
    os.replace(tmp_path / "copy", image)
    os.utime(image, (int(os.stat(image).st_mtime), int(os.stat(image).st_mtime)))
    assert snapshot.state_path(str(fake), lab.board("hello")) == before
    image.write_bytes(b"other")
    assert snapshot.state_path(str(fake), lab.board("hello")) != before
