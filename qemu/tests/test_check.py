"""make check's own verdicts (selfcheck/check.py): a mutant counts as
caught only when a failing case of the kit's tests caught it."""
import pytest

from grader import grade, rubric
from selfcheck import check

ITEMS = [rubric.Item("reads", (("vser_fops", "vser_read_works"),), 5, "hint"),
         rubric.Item("writes", (("vser_fops", "vser_write_works"),), 5, "hint")]


def graded(whys, notes=(), details=None, flags=()):
    scores = [rubric.Score(item, 0 if why else item.points, not why, why)
              for item, why in zip(ITEMS, whys)]
    return grade.LabGrade("vser", scores, list(notes), {}, "", details or {}, list(flags))


@pytest.mark.parametrize("g, says", [
    (graded(["vser did not build", "vser did not build"], ["vser did not build:", "vser.c:3: error"]),
     "does not build"),
    (graded(["refused: vser.o: calls filp_open", "refused: vser.o: calls filp_open"]), "is refused"),
    (graded(["vser_fops.vser_read_works: FAILED", ""],
            details={"reads": ["not run: the lab's 120 s of boots ran out"]}),
     "loses points only to cases that never ran"),
    (graded(["vser_fops.vser_read_works: FAILED", ""],
            details={"reads": ["not run: a boot made no progress, so the harness gave up"]}),
     "loses points only to cases that never ran"),
    (graded(["vser_fops.vser_read_works: FAILED", ""], flags=["vser_fops.vser_read_works: forged"]),
     "was flagged as forged"),
])
def test_a_mutant_not_caught_by_a_failing_case_is_not_caught(g, says):
    caught, message = check.mutant_judged("vser", "m", g, False)
    assert not caught and says in message, message


def test_a_mutant_a_failing_case_catches_is_caught():
    g = graded(["vser_fops.vser_read_works: FAILED", ""],
               details={"reads": ["# vser_read_works: EXPECTATION FAILED at vser_fops_test.c:9"]})
    caught, message = check.mutant_judged("vser", "m", g, True)
    assert caught and "is caught (strict kernel only): loses 5 of 10 points" in message
    assert check.mutant_judged("vser", "m", graded(["", ""]), False) is None


def test_a_patch_that_applies_only_with_fuzz_is_refused(tmp_path):
    """A mutant whose context drifted from the solution may no longer make
    its defect: it must be updated, not applied loosely."""
    from harness import lab
    patch = next(iter(lab.mutants("vser").values()))
    lines = open(patch).read().split("\n")
    # Change the first context line of the first hunk, as an edit beside it would.
    at = next(i for i, l in enumerate(lines) if l.startswith("@@")) + 1
    assert lines[at].startswith(" ")
    lines[at] = " " + lines[at][1:] + " /* drifted */"
    fuzzy = tmp_path / "fuzzy.patch"
    fuzzy.write_text("\n".join(lines))
    (tmp_path / "out").mkdir()
    with pytest.raises(lab.LabError, match="no longer applies"):
        lab.patched_solution("vser", str(fuzzy), str(tmp_path / "out"))


class _Done:
    returncode = 0

    def wait(self):
        return 0


def test_skips_are_counted_and_named(monkeypatch, tmp_path):
    """pytest's skips, and a solution's skipped cases, reach make check's
    last line and are named above it."""
    monkeypatch.setattr(check, "totals", {"passed": 0, "failed": 0, "skipped": 0})
    monkeypatch.setattr(check, "skips", [])
    monkeypatch.setattr(check, "sandbox_runs", lambda: True)
    out = tmp_path / "out"
    out.write_text("....s\n=== short test summary info ===\n"
                   "SKIPPED [18] qemu/tests/test_sandbox.py:35: the bubblewrap sandbox cannot run here\n"
                   "250 passed, 18 skipped in 600.00s\n")
    check.pytest_step((_Done(), open(out)))
    assert check.last_lines() == [
        "skipped: harness tests in test_sandbox.py: the bubblewrap sandbox cannot run here (18)",
        "250 passed, 0 failed, 18 skipped"]


def test_no_sandbox_at_all_is_a_failure(monkeypatch, tmp_path):
    monkeypatch.setattr(check, "totals", {"passed": 0, "failed": 0, "skipped": 0})
    monkeypatch.setattr(check, "skips", [])
    monkeypatch.setattr(check, "sandbox_runs", lambda: False)
    out = tmp_path / "out"
    out.write_text("250 passed, 36 skipped in 600.00s\n")
    check.pytest_step((_Done(), open(out)))
    assert check.totals["failed"] == 1


def test_bench_grade_exits_non_zero_on_a_wrong_grade(monkeypatch, capsys):
    import subprocess
    import sys
    from selfcheck import grade_bench
    monkeypatch.setattr(grade_bench, "batch", lambda root: {("alice", "hello"): 10})
    monkeypatch.setattr(grade_bench, "check_csv", lambda path, expected: ["alice hello: 7, expected 10"])
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, "", ""))
    monkeypatch.setattr(sys, "argv", ["grade_bench", "--jobs", "1"])
    assert grade_bench.main() == 1
    assert "WRONG: alice hello: 7, expected 10" in capsys.readouterr().out


def test_bench_exits_non_zero_when_the_timed_run_differs(monkeypatch, tmp_path, capsys):
    """The timed run (after an edit to a comment) must give what the same
    files gave before it: a time for a crashed run measures nothing."""
    import argparse
    import kdkit
    from harness import results
    from harness.ktap import FAILED, PASSED, Case
    outcomes = []
    for status in (PASSED, FAILED):
        o = results.Outcome([("s", ["c"])])
        o.cases["s"]["c"] = Case("c", status)
        outcomes.append(o)
    runs = iter(outcomes)

    class Run:
        def __init__(self, outcome):
            self.outcome, self.build_secs, self.start_secs, self.tests_secs = outcome, 1, 1, 1
            self.restores = self.boots = 1

    monkeypatch.setattr(kdkit, "run_tests", lambda args: (0, Run(next(runs))))
    args = argparse.Namespace(lab="hello", src="solutions", strict=False)
    assert kdkit.run_bench(args) == 1
    assert "WRONG: the timed run gave 0 passed, 1 failed" in capsys.readouterr().out


def test_timings_reads_what_make_bench_prints():
    from selfcheck import timings
    m = timings.BENCH.search("bench hello (fast): edit-to-result 0.85 s = build 0.50 s + restore "
                             "0.30 s + tests 0.04 s (1 run of the VM) + harness 0.01 s")
    assert m and tuple(map(float, m.groups())) == (0.85, 0.50, 0.30, 0.04)
    text = timings.render([("hello", 9, [(0.85, 0.5, 0.34), (0.9, 0.5, 0.4)])], [("hello", 3.2)],
                          "2026-12-03", "abc1234", "2 CPUs", 2)
    assert "   * - hello (9 cases)\n     - 0.85--0.90 s\n     - 0.50 s\n" in text
    assert "on 2026-12-03 at abc1234, on 2 CPUs" in text and "hello 3.2 s" in text


def test_the_docs_state_the_counts_the_code_has():
    """A count the README or the course states (a lab's or suite's cases,
    an example run's totals, the line a quoted failure points to) is the
    code's."""
    from selfcheck import doccheck
    assert doccheck.stated_counts() == []


def test_imports_txt_must_be_exactly_what_the_references_import():
    assert check.imports_judged({"kmalloc", "kfree"}, {"kmalloc", "kfree"}) == (True, "")
    ok, why = check.imports_judged({"kmalloc"}, {"kmalloc", "filp_open"})
    assert not ok and why == "listed, but no reference calls it: filp_open"
    ok, why = check.imports_judged({"kmalloc", "kfree"}, {"kmalloc"})
    assert not ok and why == "not listed: kfree"
