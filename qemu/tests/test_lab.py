"""What a lab is made of: files, expected cases, the generated Kbuild."""
import os

import pytest

from harness import kbuild, lab, runner
from kernel import source as kernel_source


def test_expected_cases_come_from_the_kit_sources_in_run_order():
    plan = dict(lab.expected_cases("vser"))
    assert list(plan) == ["vser_fops", "vser_init", "vser_user"]
    assert plan["vser_init"][0] == "vser_init_creates_every_node"
    assert "vser_user_sigio_when_data_arrives" in plan["vser_user"]


def test_student_files_are_the_solution_files():
    assert lab.student_files("vser") == ["vser.c"]


def test_resolve_src_takes_flat_and_nested_folders(tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "vser.c").write_text("")
    (tmp_path / "nested" / "vser").mkdir(parents=True)
    (tmp_path / "nested" / "vser" / "vser.c").write_text("")
    assert lab.resolve_src("vser", str(tmp_path / "flat")) == str(tmp_path / "flat")
    assert lab.resolve_src("vser", str(tmp_path / "nested")) == str(tmp_path / "nested" / "vser")
    with pytest.raises(lab.LabError, match="has no vser/vser.c"):
        lab.resolve_src("vser", str(tmp_path))


def test_kbuild_links_student_suites_and_builds_the_module_alone_too():
    text = kbuild.kbuild_text("vser", ["vser.c"], ["/k/vser_fops_test.c", "/k/vser_init_test.c"])
    assert "obj-m := kdkit.o vser_kunit.o\n" in text
    assert "vser_kunit-y := vser.o vser_fops_test.o vser_init_test.o" in text
    assert "kdkit-y := kdkit_fail.o kdkit_file.o kdkit_interleave.o kdkit_leak.o kdkit_left.o kdkit_main.o kdkit_sweep.o kdkit_switches.o kdkit_umem.o" in text
    assert kbuild.kbuild_text("vser", ["vser.c"], [], with_tests=False).endswith("obj-m := vser.o\n")


def test_point_home_maps_build_paths_back_to_the_users_files(tmp_path):
    built = str(tmp_path / "build" / "vser.c")
    text = f"{built}:3:1: error: oops\n"
    assert kbuild.point_home(text, {built: "/home/ada/vser.c"}) == "/home/ada/vser.c:3:1: error: oops\n"
    here = os.path.join(lab.KIT, "solutions", "vser", "vser.c")
    assert kbuild.point_home(built, {built: here}).endswith("solutions/vser/vser.c")


def test_the_fsled_plan_loads_the_board_before_the_tests():
    built = kbuild.Built(board="/b/board.ko", module="/b/fsled_kunit.ko", helper="/b/kdkit.ko",
                      plain=None, progs=[], tools=[])
    assert runner.plan_text("", built) == "only \nload board.ko\ngroup 1 fsled_kunit.ko\n"
    assert built.files() == ["/b/board.ko", "/b/fsled_kunit.ko", "/b/kdkit.ko"]


def test_boards_give_racing_labs_two_cpus_and_others_none():
    assert lab.board("fsled").devices == ("gpio",) and lab.board("fsled").cpus == 2
    # vser's two-threads cases need a CPU for each thread.
    assert lab.board("vser") == lab.Board(cpus=2)
    assert lab.board("hello") == lab.Board()


def test_a_kit_program_is_compiled_once_per_source(tmp_path, monkeypatch):
    monkeypatch.setattr(kbuild.kernel_source, "CACHE", str(tmp_path / "cache"))
    compiles = []
    real = kbuild.subprocess.run

    def run(cmd, **kw):
        if "-static" in cmd:
            compiles.append(cmd)
        return real(cmd, **kw)
    monkeypatch.setattr(kbuild.subprocess, "run", run)
    src = tmp_path / "prog.c"
    src.write_text("int main(void) { return 3; }\n")
    for out in ("a", "b"):
        (tmp_path / out).mkdir()
        kbuild._cc_static(str(src), str(tmp_path / out / "prog"), "prog")
    assert len(compiles) == 1
    assert real([str(tmp_path / "b" / "prog")]).returncode == 3
    # Another source is another program.
    src.write_text("int main(void) { return 4; }\n")
    kbuild._cc_static(str(src), str(tmp_path / "b" / "prog"), "prog")
    assert len(compiles) == 2
    assert real([str(tmp_path / "b" / "prog")]).returncode == 4


def test_the_kits_and_the_kernels_files_are_named_the_same_on_every_machine():
    """A failed check in a kit header and a kernel helper's line read as
    paths in the kit and in the kernel tree, not this machine's."""
    tree = os.path.join(kernel_source.CACHE, "src", "6.1.192-abc-def")
    text = (f"EXPECTATION FAILED at {lab.KIT}/common/fsled_width_test.h:161 and "
            f"{lab.KIT}/common/kdkit_sweep.c:94; writeb() at {tree}/arch/x86/include/asm/io.h:67")
    assert kbuild.point_home(text, {}) == (
        "EXPECTATION FAILED at common/fsled_width_test.h:161 and common/kdkit_sweep.c:94; "
        "writeb() at arch/x86/include/asm/io.h:67")
