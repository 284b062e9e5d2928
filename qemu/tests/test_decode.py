"""Kernel reports name the student's lines: frames of the kit's modules are
decoded to file:line with the debug information the modules are built with."""
import os
import re
import subprocess

import pytest

import kdkit
from harness import decode, kbuild, lab, results
from harness.ktap import FAILED, Case
from kernel import source as kernel_source

KIT = lab.KIT


def test_a_frame_of_the_students_module_names_its_file_and_line(tmp_path):
    built, _warnings, _origin = kbuild.build("vser", os.path.join(KIT, "solutions", "vser"),
                                          kernel_source.kernel_dir("fast"), str(tmp_path / "b"))
    modules = {"vser_kunit": built.module}
    src = open(os.path.join(KIT, "solutions", "vser", "vser.c")).read().splitlines()
    first = next(i for i, l in enumerate(src, 1) if l.startswith("static ssize_t vser_read("))
    last = next(i for i, l in enumerate(src[first:], first + 1) if l == "}")
    lines = [" vser_read+0x10/0x100 [vser_kunit]", " ? vfs_read+0x1/0x2", " other+0x1/0x2 [kdkit]"]
    got = decode.annotate(lines, modules)
    m = re.fullmatch(r" vser_read\+0x10/0x100 \[vser_kunit\] \((\S+)/vser\.c:(\d+)\)", got[0])
    assert m, got[0]
    assert first <= int(m[2]) <= last
    # Frames of the kernel, or of modules it did not build, stay as they were.
    assert got[1:] == lines[1:]


def test_thousands_of_fake_frames_cost_a_bounded_number_of_lookups(tmp_path, monkeypatch):
    """A driver that prints 3,000 made-up frames of its own module does not
    keep the grade decoding them one addr2line at a time."""
    ko = tmp_path / "vser_kunit.ko"
    ko.write_bytes(b"")
    asked = []
    monkeypatch.setattr(decode, "_symbols", lambda path: {"vser_read": (".text", 0)})
    monkeypatch.setattr(decode, "_where", lambda path, sec, addr: asked.append(addr) or
                        [("vser_read", "vser.c:1")])
    lines = [f" vser_read+{hex(i)}/0x100000 [vser_kunit]" for i in range(3000)]
    found = decode.locate(lines, {"vser_kunit": str(ko)})
    assert len(asked) == decode.MAX_FRAMES and len(found) == decode.MAX_FRAMES
    # Spread over many cases and reports, the run's lookups are bounded too.
    asked.clear()
    outcome = results.Outcome([("s", [f"c{i}" for i in range(30)])])
    outcome.cases["s"] = {f"c{i}": Case(f"c{i}", FAILED, lines[i * 100:(i + 1) * 100])
                          for i in range(30)}
    outcome.health["s"] = [lines[:50]] * 10
    decode.annotate_outcome(outcome, {"vser_kunit": str(ko)})
    assert len(asked) == decode.MAX_FRAMES


def test_a_case_killed_for_time_shows_where_its_processes_wait(tmp_path, capsys):
    src = tmp_path / "vser"
    src.mkdir()
    lab.patched_solution("vser", os.path.join(KIT, "qemu", "tests", "fixtures", "grade",
                                              "vser-sleeps-holding-the-mutex.patch"), str(src))
    code = kdkit.main(["test", "vser", "--src", str(src),
                       "--case", "vser_user.vser_user_read_blocks_until_data"])
    out = capsys.readouterr().out
    assert code == 1 and "killed after 5 s" in out
    # The reader sleeps in read(), the writer waits for the mutex in write(),
    # each frame decoded to its line.
    assert re.search(r"its process \d+ \(vser_user\) waits in:\n.*vser_read\+0x\w+/0x\w+ \[vser\] "
                     r"\(\S+/vser\.c:\d+\)", out)
    assert re.search(r"vser_write\+0x\w+/0x\w+ \[vser\] \(\S+/vser\.c:\d+\)", out)


def readme_example():
    """The README's leak report example, the lines of its code block."""
    text = open(os.path.join(KIT, "README.md")).read()
    block = text.split("```\n[FAILED] vser_init_unwinds_every_failed_allocation\n", 1)[1]
    return ["[FAILED] vser_init_unwinds_every_failed_allocation"] + block.split("\n```")[0].splitlines()


def test_the_readmes_leak_report_is_what_a_run_prints(tmp_path, capsys, monkeypatch):
    """Line for line, but for what differs between builds: hexadecimal
    offsets, which allocation number, which line of the student's file."""
    monkeypatch.chdir(KIT)    # paths as make test prints them
    src = tmp_path / "vser"
    src.mkdir()
    lab.patched_solution("vser", os.path.join(KIT, "kunit", "vser", "mutants",
                                              "1-kfifo-not-freed-when-cdev-add-fails.patch"), str(src))
    kdkit.main(["test", "vser", "--src", str(src), "--case", "vser_init_unwinds_every_failed_allocation"])
    out = capsys.readouterr().out.replace(str(src), "labs/vser")

    def loose(line):
        line = re.sub(r"0x[0-9a-f]+", "0x?", line)
        line = re.sub(r"allocation \d+ of", "allocation ? of", line)
        return re.sub(r"vser\.c:\d+", "vser.c:?", line)
    got = [loose(line) for line in out.splitlines()]
    for line in readme_example():
        assert loose(line) in got, line
    # Where the kit's own report comes from is exact.
    assert next(l for l in readme_example() if "EXPECTATION FAILED" in l) in out.splitlines()


def _lines_by_offset(ko, fn):
    """{offset in fn: source line} for each instruction of fn, in order."""
    out = subprocess.run(["objdump", "-d", "-l", "--no-show-raw-insn", f"--disassemble={fn}", ko],
                         capture_output=True, text=True).stdout
    start, line, found = None, None, {}
    for text in out.splitlines():
        m = re.match(r"^([0-9a-f]+) <", text)
        if m:
            start = int(m[1], 16)
        m = re.match(r"^(/\S+:\d+)", text)
        if m:
            line = m[1]
        m = re.match(r"^\s+([0-9a-f]+):\s", text)
        if m and start is not None and line:
            found[int(m[1], 16) - start] = line
    return found


@pytest.mark.parametrize("lab_name", ["hello", "vser", "fsled", "dma"])
def test_the_faulting_instruction_is_named_by_its_own_line(tmp_path, lab_name):
    """A crash's RIP is the faulting instruction itself, not a return
    address: it is looked up where it is, so a fault in the middle of a
    function names its own line, not the line of the instruction before."""
    built, _warnings, _origin = kbuild.build(lab_name, os.path.join(KIT, "solutions", lab_name),
                                          kernel_source.kernel_dir("fast"), str(tmp_path / "b"))
    mod = os.path.basename(built.module)[:-3]
    for fn in decode._symbols(built.module):
        by_offset = _lines_by_offset(built.module, fn)
        offsets = sorted(by_offset)
        # An instruction whose line is not the one of the instruction before it.
        turn = next((b for a, b in zip(offsets, offsets[1:])
                     if by_offset[a].rsplit(":", 1)[1] != by_offset[b].rsplit(":", 1)[1]), None)
        if turn:
            break
    frame = f"{fn}+{turn:#x}/0x1000 [{mod}]"
    rip, trace = decode.annotate([f"RIP: 0010:{frame}", f" {frame}"], {mod: built.module})
    own = by_offset[turn].rsplit(":", 1)[1]
    before = by_offset[max(o for o in offsets if o < turn)].rsplit(":", 1)[1]
    assert rip.endswith(f".c:{own})"), (rip, own)
    assert trace.endswith(f".c:{before})"), (trace, before)    # a return address: the call


def test_a_kernel_helper_inlined_into_the_driver_is_placed_on_the_drivers_line(tmp_path):
    """writeb() is inlined from the kernel's asm/io.h: the place shown is
    the student's line that called it, not the header's."""
    src = tmp_path / "fsled"
    src.mkdir()
    lab.patched_solution("fsled", os.path.join(KIT, "kunit", "fsled", "mutants",
                                               "15-dat-written-a-byte-at-a-time.patch"), str(src))
    built, _warnings, origin = kbuild.build("fsled", str(src), kernel_source.kernel_dir("fast"),
                                            str(tmp_path / "b"))
    text = open(src / "fsled.c").read().splitlines()
    section, value = decode._symbols(built.module)["fsled_set"]
    seen = set()
    for off in range(0x80):
        chain = decode._where(built.module, section, value + off)
        if not chain or "/io.h:" not in chain[0][1]:
            continue
        where = kbuild.point_home(decode.describe(chain, "fsled_set"), origin)
        m = re.fullmatch(r"(\S+):(\d+), where (\w+)\(\) was inlined", where)
        assert m and m[1].endswith("fsled.c"), where
        assert f"{m[3]}(" in text[int(m[2]) - 1], (where, text[int(m[2]) - 1])
        seen.add(m[3])
    assert seen == {"readb", "writeb"}


def test_a_chain_wholly_in_the_drivers_code_is_shown_as_before():
    chain = [("vser_take", "b/vser.c:98"), ("vser_read", "b/vser.c:120")]
    assert decode.describe(chain, "vser_read") == "vser_take() at b/vser.c:98, inlined"
    assert decode.describe(chain[1:], "vser_read") == "b/vser.c:120"
    helper = [("list_add", "/k/src/include/linux/list.h:69"), ("vser_take", "b/vser.c:98"),
              ("vser_read", "b/vser.c:120")]
    assert decode.describe(helper, "vser_read") == ("vser_take() at b/vser.c:98, inlined, "
                                                    "where list_add() was inlined")
