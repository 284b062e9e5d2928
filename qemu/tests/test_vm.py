"""How a QEMU run ends: normally, by the time limit, or by a device model;
and the firmware and busybox it is given."""
import os
import shutil
import subprocess
import sys

import pytest

from harness import lab, vm

KIT = lab.KIT


def test_a_hardware_error_is_reported_as_such():
    cmd = ["sh", "-c", "echo 'CPU #0: RAX=0' >&2; echo 'qemu: hardware error: EDU: out of bounds' >&2; exit 134"]
    with pytest.raises(vm.HardwareError, match="EDU: out of bounds"):
        vm.boot(cmd, 10)


def test_other_failures_say_what_qemu_said():
    with pytest.raises(vm.VmError, match="no such memdev"):
        vm.boot(["sh", "-c", "echo 'qemu: no such memdev' >&2; exit 1"], 10)


def test_a_silent_death_while_being_restored_says_how_qemu_ended():
    # The out-of-memory killer's SIGKILL leaves no word on stderr: the
    # message must still say it was a kill, not a fault of the state.
    greeting = '{"QMP": {}}'
    cmd = ["sh", "-c", f"echo '{greeting}'; read line; kill -KILL $$"]
    with pytest.raises(vm.VmError, match="killed by SIGKILL"):
        vm.boot(cmd, 10, qmp=[("migrate-incoming", {})])


def test_the_time_limit_ends_a_run():
    secs, timed_out, started = vm.boot(["sleep", "5"], 0.3)
    assert timed_out and secs < 2 and started is None


def test_the_guest_start_is_timed_from_the_results_channel(tmp_path):
    results = tmp_path / "results.log"
    cmd = ["sh", "-c", f"sleep 0.3; echo 'kdkit: payload' > {results}; sleep 0.3"]
    secs, timed_out, started = vm.boot(cmd, 10, str(results))
    assert not timed_out and 0.25 < started < secs


def test_the_dma_board_asks_for_edu_icount_and_a_strict_swiotlb(tmp_path):
    args = vm.board_args(lab.board("dma"), str(tmp_path))
    assert "edu" in args and "shift=auto,sleep=off" in args
    assert "swiotlb=4096,force" in lab.board("dma").cmdline
    # edu reaches 28 address lines: the swiotlb, high in RAM, must too.
    cmd = vm.command(str(tmp_path), "initrd", "payload", "console", "results",
                     lab.board("dma"), str(tmp_path))
    assert cmd[cmd.index("-m") + 1] == "256M"


def test_busybox_must_be_static():
    assert not vm._dynamic(vm.busybox())
    assert vm._dynamic("/bin/sh")


def test_without_qboot_the_guest_boots_on_seabios(tmp_path):
    """A QEMU that ships no qboot (some builds of 6.2 to 10) gets no -bios,
    so its own SeaBIOS boots the kit kernel."""
    real = shutil.which(vm.QEMU)
    log = tmp_path / "args"
    wrapper = tmp_path / vm.QEMU
    wrapper.write_text(f'#!/bin/sh\n[ "$1 $2" = "-L help" ] && {{ echo /nonexistent; exit 0; }}\n'
                       f'echo "$@" >> {log}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}")
    proc = subprocess.run([sys.executable, os.path.join(KIT, "qemu", "kdkit.py"), "test", "hello",
                           "--src", "solutions"], capture_output=True, text=True, cwd=KIT, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    hello = lab.case_count("hello")
    assert proc.stdout.strip().splitlines()[-1] == f"{hello} passed, 0 failed"
    args = log.read_text()
    assert "-kernel" in args and "-bios" not in args and "qboot" not in args
