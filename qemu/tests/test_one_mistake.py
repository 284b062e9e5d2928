"""One mistake, one failure: what a student is told names their line, and
the cases after a mistake that left the kernel dirty start from a clean
one (make test LAB=fsled, as a student runs it)."""
import os
import re

import kdkit
from harness import lab

KIT = lab.KIT
FIXTURES = os.path.join(KIT, "qemu", "tests", "fixtures", "grade")


def failed_cases(out):
    """{case: its lines} for each failed case of a make test output."""
    cases, current = {}, None
    for line in out.splitlines():
        m = re.match(r"\[(PASSED|FAILED|CRASHED|SKIPPED)\] (\w+)$", line)
        if m:
            current = m[2] if m[1] in ("FAILED", "CRASHED") else None
            if current:
                cases[current] = []
        elif current and line.startswith("    "):
            cases[current].append(line.strip())
    return cases


def run_test(lab_name, patch, src, capsys, monkeypatch):
    monkeypatch.chdir(KIT)
    src.mkdir()
    lab.patched_solution(lab_name, patch, str(src))
    kdkit.main(["test", lab_name, "--src", str(src)])
    return capsys.readouterr().out


def test_a_bank_left_claimed_on_an_error_path_fails_one_case(tmp_path, capsys, monkeypatch):
    out = run_test("fsled", os.path.join(FIXTURES, "fsled-region-kept-when-ioremap-fails.patch"),
                   tmp_path / "fsled", capsys, monkeypatch)
    failed = failed_cases(out)
    # The later cases would find the bank still claimed: they ran in a fresh kernel.
    assert list(failed) == ["fsled_probe_unwinds_every_failure"], out
    log = "\n".join(failed["fsled_probe_unwinds_every_failure"])
    assert re.search(r"allocated at .*\(\S*fsled\.c:\d+\)", log), log
    assert "ran again in a fresh kernel" in out
    # What followed from it is said to follow from it, not as a second mistake.
    assert "expected 0" not in log and "Expected points" not in log, log
    assert re.search(r"probe with no failure: probe returned -16, likely because of what was "
                     r"found left behind after allocation \d+ of probe failed", log), log
    # No machine's paths: the kit's files by their place in the kit.
    assert "EXPECTATION FAILED at common/kdkit_sweep.c:" in log and KIT not in out


def test_a_register_written_a_byte_wide_is_shown_at_the_students_lines(tmp_path, capsys,
                                                                         monkeypatch):
    src = tmp_path / "fsled"
    out = run_test("fsled", os.path.join(KIT, "kunit", "fsled", "mutants",
                                         "15-dat-written-a-byte-at-a-time.patch"),
                   src, capsys, monkeypatch)
    failed = failed_cases(out)
    assert list(failed) == ["fsled_registers_are_accessed_32_bits_wide"], out
    narrow = [l for l in failed["fsled_registers_are_accessed_32_bits_wide"] if "bits wide" in l]
    text = open(src / "fsled.c").read().splitlines()
    # One line for each narrow instruction, whichever bank it touched,
    # at the student's line that calls readb() or writeb().
    assert len(narrow) == 2, narrow
    for line in narrow:
        m = re.search(r"\((\S+)/fsled\.c:(\d+), where (readb|writeb)\(\) was inlined\)", line)
        assert m and f"{m[3]}(" in text[int(m[2]) - 1], line
    assert "io.h" not in out and ".cache" not in "\n".join(narrow)
