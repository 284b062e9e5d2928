"""The grader against hostile submissions: each gets the right score, the
same on every run, with a clear note, and leaves the next one untouched.
These boot QEMU, so they need 'make setup' first."""
import concurrent.futures
import csv
import json
import os
import re
import shutil
import subprocess

import pytest

from grader import grade
from harness import lab

HERE = os.path.dirname(os.path.abspath(__file__))
KIT = lab.KIT
FIXTURES = os.path.join(HERE, "fixtures")
RUNS = 2   # each hostile fixture is graded this often; any difference is a bug


def graded_often(grade_one):
    """grade_one(n) for each of RUNS runs, at once, as JOBS=2 would: the
    runs must not differ, even side by side."""
    with concurrent.futures.ThreadPoolExecutor(RUNS) as pool:
        return list(pool.map(grade_one, range(RUNS)))


def patched(name, folder):
    """A submission folder holding the hello solution with one defect."""
    folder.mkdir()
    path = os.path.join(FIXTURES, "grade", f"{name}.patch")
    if not os.path.exists(path):
        path = os.path.join(FIXTURES, f"{name}.patch")
    return lab.patched_solution("hello", path, str(folder))


def grade_hello(submission, out):
    g = grade.grade_lab("student", "hello", str(submission), str(out), False)
    return g.points, g


@pytest.mark.parametrize("name, points, says", [
    ("compile-error", 0, "hello did not build"),
    ("oops-in-init", 7, "BUG: kernel NULL pointer dereference"),
    ("hello-panic", 7, "Kernel panic - not syncing: hello: fixture panics in init"),
    ("hello-spin", 7, "soft lockup"),
    ("deadlock-in-init", 7, "soft lockup"),
    # The log limit, or the hung-task panic once a case has run 15 s.
    # On a loaded machine the boot's time limit may come first.
    ("printk-flood", 7, ("the kernel log passed 16 MB", "blocked for more than",
                         "the run timed out after")),
    ("fake-ktap", 7, "== -5"),
    ("refuses-to-unload", 7, "reference count changed"),
])
def test_a_hostile_driver_gets_its_partial_score_every_time(tmp_path, name, points, says):
    submission = patched(name, tmp_path / "submission")
    seen = set()
    for got, g in graded_often(lambda n: grade_hello(submission, tmp_path / f"out{n}")):
        said = "\n".join(g.notes + [s.why for s in g.scores]
                         + [l for lines in g.details.values() for l in lines])
        assert any(s in said for s in ((says,) if isinstance(says, str) else says)), said
        seen.add(got)
    assert seen == {points}


def test_the_solution_gets_full_marks(tmp_path):
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "hello.c").write_bytes(open(os.path.join(KIT, "solutions", "hello", "hello.c"), "rb").read())
    got, g = grade_hello(submission, tmp_path / "out")
    assert got == g.max_points == 10


@pytest.mark.parametrize("make, points, says", [
    (lambda d: None, 0, "hello.c: missing"),
    (lambda d: (d / "hello.c").write_text(""), 0, "hello did not build"),
    (lambda d: os.symlink("/etc/passwd", d / "hello.c"), 0, "hello.c: is a symbolic link; refused"),
    (lambda d: (d / "hello.c").write_bytes(b"/* */\n" * ((50 << 20) // 6)), 0,
     "over the 256 KiB limit"),
    (lambda d: os.mkfifo(d / "hello.c"), 0, "hello.c: is not a regular file; refused"),
])
def test_bad_files_are_refused_with_a_line_each(tmp_path, make, points, says):
    submission = tmp_path / "submission"
    submission.mkdir()
    make(submission)
    got, g = grade_hello(submission, tmp_path / "out")
    assert got == points
    assert any(says in note for note in g.notes), g.notes


def test_an_extra_file_is_noted_and_ignored(tmp_path):
    submission = tmp_path / "submission" / "hello"
    submission.mkdir(parents=True)
    (submission / "hello.c").write_bytes(open(os.path.join(KIT, "solutions", "hello", "hello.c"), "rb").read())
    (submission / "notes.txt").write_text("hi")
    got, g = grade_hello(tmp_path / "submission", tmp_path / "out")
    assert got == 10
    assert any("hello/notes.txt: not a file of lab hello" in n for n in g.notes)


def test_a_batch_grades_each_student_apart_into_every_format(tmp_path):
    batch = tmp_path / "batch"
    batch.mkdir()
    patched("hello-panic", batch / "alice")        # crashes the kernel first...
    (batch / "bob").mkdir()                          # ...bob's run must not notice
    (batch / "bob" / "hello.c").write_bytes(
        open(os.path.join(KIT, "solutions", "hello", "hello.c"), "rb").read())
    out = tmp_path / "out"
    cmd, env = lab.entry_point("grader.grade", "--submissions", str(batch), "--labs", "hello",
                               "--out", str(out))
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=KIT, env=env)
    assert proc.returncode == 0, proc.stderr
    with open(out / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["student"], r["hello"], r["total"]) for r in rows] == [("alice", "7", "7"),
                                                                     ("bob", "10", "10")]
    results = json.load(open(out / "bob" / "results.json"))
    assert results["score"] == 10
    for t in results["tests"]:
        assert set(t) <= {"name", "score", "max_score", "output", "visibility"}
        assert t["visibility"] in ("visible", "hidden", "after_due_date", "after_published")
    junit = open(out / "junit.xml").read()
    assert 'testsuite name="alice.hello"' in junit and "<failure" in junit
    # The same batch in two shards, as two CI jobs would, then joined: the
    # make targets the CI examples run.
    for i in (1, 2):
        make = subprocess.run(["make", "-s", "grade", f"SUBMISSIONS={batch}", "LABS=hello",
                               "STRICT=0", f"SHARD={i}/2", f"OUT={tmp_path}/shard{i}"],
                              cwd=KIT, capture_output=True, text=True)
        assert make.returncode == 0, make.stdout + make.stderr
    make = subprocess.run(["make", "-s", "grade-merge", f"SHARDS={tmp_path}/shard1 {tmp_path}/shard2",
                           f"OUT={tmp_path}/merged"], cwd=KIT, capture_output=True, text=True)
    assert make.returncode == 0, make.stdout + make.stderr
    assert open(tmp_path / "merged" / "grades.csv").read() == open(out / "grades.csv").read()
    assert json.load(open(tmp_path / "merged" / "bob" / "results.json"))["score"] == 10


def test_odd_folder_names_spoil_nothing_and_reach_no_terminal_raw(tmp_path):
    """A folder named like the batch's own files, one whose name is not
    UTF-8, and one whose name holds a terminal escape: each is graded, and
    written and shown escaped."""
    batch = tmp_path / "batch"
    batch.mkdir()
    solution = open(os.path.join(KIT, "solutions", "hello", "hello.c"), "rb").read()
    names = [b"junit.xml", b"caf\xe9", b"\x1b[2Jred"]
    for name in names:
        folder = os.path.join(os.fsencode(str(batch)), name)
        os.mkdir(folder)
        with open(os.path.join(folder, b"hello.c"), "wb") as f:
            f.write(solution)
    out = tmp_path / "out"
    cmd, env = lab.entry_point("grader.grade", "--submissions", str(batch), "--labs", "hello",
                               "--out", str(out))
    proc = subprocess.run(cmd, capture_output=True, cwd=KIT, env=env)
    assert proc.returncode == 0, proc.stderr
    assert b"\x1b" not in proc.stdout + proc.stderr
    with open(out / "grades.csv", encoding="utf-8") as f:
        rows = {r["student"]: r["total"] for r in csv.DictReader(f)}
    assert rows == {"_junit.xml": "10", "caf\\xe9": "10", "\\x1b[2Jred": "10"}
    assert open(out / "junit.xml", encoding="utf-8").read().count("<testsuite ") == 3
    assert json.load(open(out / "_junit.xml" / "results.json"))["score"] == 10


def test_student_names_are_escaped_and_never_the_batchs_files():
    assert grade.student_name("ada") == "ada"
    assert grade.student_name("Zoë") == "Zoë"
    assert grade.student_name("grades.csv") == "_grades.csv"
    assert grade.student_name(".git") == "_.git"
    assert grade.student_name(os.fsdecode(b"caf\xe9")) == "caf\\xe9"
    assert grade.student_name("a\x1b[31mb\n") == "a\\x1b[31mb\\x0a"


def test_an_instructors_private_cases_are_run_and_scored_hidden(tmp_path, monkeypatch):
    monkeypatch.setenv("KDKIT_PRIVATE", os.path.join(FIXTURES, "private"))
    submission = tmp_path / "submission"
    submission.mkdir()
    shutil.copy(os.path.join(KIT, "solutions", "hello", "hello.c"), submission)
    got, g = grade_hello(submission, tmp_path / "out")
    private = [s for s in g.scores if s.item.name == "a long name"]
    assert got == g.max_points == 12
    assert private and private[0].passed and private[0].item.visibility == "hidden"


def test_an_endless_loop_in_read_costs_only_what_reads(tmp_path):
    submission = tmp_path / "submission"
    submission.mkdir()
    lab.patched_solution("vser", os.path.join(FIXTURES, "grade", "vser-loop-in-read.patch"),
                         str(submission))
    seen = set()
    for g in graded_often(lambda n: grade.grade_lab("student", "vser", str(submission),
                                                    str(tmp_path / f"out{n}"), False)):
        assert "soft lockup" in "\n".join(l for ls in g.details.values() for l in ls)
        seen.add(g.points)
    # Init, its unwinding, exit, the ioctls and the parameters do not
    # read: 2 + 4 + 1 + 3 + 2 of 25.
    assert seen == {12}


def test_a_spin_with_interrupts_off_is_stopped_by_the_time_limit(tmp_path, monkeypatch):
    """No detector in the guest sees a CPU that spins with its interrupts
    off: the run's wall-clock limit stops it, and the message gives the
    limit the run had (never a figure of what was left after it)."""
    from harness import runner
    monkeypatch.setattr(runner, "TIMEOUT", 10.0)
    monkeypatch.setattr(runner, "LAB_BUDGET", 12.0)
    submission = tmp_path / "submission"
    submission.mkdir()
    text = open(os.path.join(KIT, "solutions", "hello", "hello.c")).read()
    head = "ssize_t hello_greet(char *buf, size_t size, const char *name)\n{\n"
    (submission / "hello.c").write_text(text.replace(
        head, head + "\tlocal_irq_disable();\n\tfor (;;)\n\t\tcpu_relax();\n", 1))
    got, g = grade_hello(submission, tmp_path / "out")
    said = "\n".join(g.notes + [l for lines in g.details.values() for l in lines])
    assert got == 0, said
    limit = 10 * runner.machine.slowness()
    assert f"the run timed out after {limit:.0f} s" in said, said
    assert not re.search(r"after -?0 s", said), said
