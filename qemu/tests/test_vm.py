"""How a QEMU run ends: normally, by the time limit, or by a device model."""
import pytest

import lab
import vm


def test_a_hardware_error_is_reported_as_such():
    cmd = ["sh", "-c", "echo 'CPU #0: RAX=0' >&2; echo 'qemu: hardware error: EDU: out of bounds' >&2; exit 134"]
    with pytest.raises(vm.HardwareError, match="EDU: out of bounds"):
        vm.boot(cmd, 10)


def test_other_failures_say_what_qemu_said():
    with pytest.raises(vm.VmError, match="no such memdev"):
        vm.boot(["sh", "-c", "echo 'qemu: no such memdev' >&2; exit 1"], 10)


def test_the_time_limit_ends_a_run():
    secs, timed_out = vm.boot(["sleep", "5"], 0.3)
    assert timed_out and secs < 2


def test_the_dma_board_asks_for_edu_icount_and_a_strict_swiotlb(tmp_path):
    args = vm.board_args(lab.board("dma"), str(tmp_path))
    assert "edu" in args and "shift=auto,sleep=off" in args
    assert "swiotlb=4096,force" in lab.board("dma").cmdline
    assert lab.board("dma").memory == "256M"
