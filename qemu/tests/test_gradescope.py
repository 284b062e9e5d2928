"""The Gradescope bundle, run as Gradescope would, in a temporary root."""
import json
import os
import shutil
import subprocess
import sys
import zipfile

from grader import bundle
from harness import lab

HERE = os.path.dirname(os.path.abspath(__file__))
KIT = lab.KIT
SOLUTION = os.path.join(KIT, "solutions", "hello", "hello.c")


def unpacked(tmp_path, **options):
    """The hello bundle laid out as Gradescope does: (root, zip names)."""
    made = bundle.build(["hello"], str(tmp_path / "autograder.zip"), **options)
    root = tmp_path / "autograder"
    with zipfile.ZipFile(made) as z:
        z.extractall(root / "source")
        names = {i.filename: i for i in z.infolist()}
    for script in ("setup.sh", "run_autograder"):
        os.chmod(root / "source" / script, 0o755)
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    return root, names


def autograde(root, env, source=None):
    """run_autograder on a submission holding source (none: no folder)."""
    if source is not None:
        (root / "submission").mkdir()
        (root / "submission" / "hello.c").write_text(source)
    run = subprocess.run([str(root / "run_autograder")], env=env, capture_output=True, text=True)
    text = (root / "results" / "results.json").read_text()
    return run, json.loads(text), text


def solution():
    with open(SOLUTION) as f:
        return f.read()


def test_the_bundle_sets_up_and_grades_a_submission(tmp_path):
    root, names = unpacked(tmp_path, private=os.path.join(HERE, "fixtures", "private"))
    assert {"setup.sh", "run_autograder", "kdkit/Makefile", "kdkit/qemu/grader/grade.py",
            "kdkit/labs/hello/hello.c", "kdkit/private/hello/hello_private_test.c"} <= set(names)
    # No answers: no solution, alternative, mutant or fixture, no other lab.
    # Nor the kit's parts grading never runs: its self-checks, the course.
    leaks = [n for n in names if n.startswith(("kdkit/solutions/", "kdkit/qemu/tests/",
                                               "kdkit/docs/", "kdkit/kunit/vser/",
                                               "kdkit/labs/vser/", "kdkit/qemu/selfcheck/",
                                               "kdkit/qemu/course/"))
             or "/alternative/" in n or "/mutants/" in n]
    assert not leaks
    assert (names["kdkit/private/hello/hello_private_test.c"].external_attr >> 16) & 0o077 == 0
    env = dict(os.environ, KDKIT_GS_ROOT=str(root), PYTHON=sys.executable)
    setup = subprocess.run(["sh", str(root / "source" / "setup.sh")], env=env,
                           capture_output=True, text=True)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    run, results, _text = autograde(root, env, solution())
    assert run.returncode == 0, run.stderr
    # The kit's 10 points and the private suite's 2, hidden from the student.
    assert results["score"] == 12
    assert [t["visibility"] for t in results["tests"] if t["name"].endswith("a long name")] == ["hidden"]
    assert all({"name", "score", "max_score", "output", "visibility"} == set(t)
               for t in results["tests"])


def test_a_submission_that_cannot_be_graded_still_gets_a_result(tmp_path):
    root, _names = unpacked(tmp_path)
    # No submission folder at all: grade.py refuses, run_autograder says so.
    _run, results, _text = autograde(root, dict(os.environ, KDKIT_GS_ROOT=str(root)))
    assert results["score"] == 0 and "could not grade" in results["output"]


def test_a_bundle_with_the_kernel_packed_builds_no_kernel(tmp_path):
    root, names = unpacked(tmp_path, pack=True)
    assert "kdkit/kernel-pack.tar.gz" in names
    # An empty cache: only the pack can give this run a kernel.
    env = dict(os.environ, KDKIT_GS_ROOT=str(root), KDKIT_CACHE=str(tmp_path / "empty"))
    setup = subprocess.run(["sh", str(root / "source" / "setup.sh")], env=env,
                           capture_output=True, text=True)
    assert setup.returncode == 0 and "kernel is unpacked" in setup.stdout, setup.stdout + setup.stderr
    kept = root / "kdkit-cache" / "kit-objects"
    made = sorted(os.listdir(kept))
    run, results, _text = autograde(root, env, solution())
    assert run.returncode == 0, run.stderr
    assert made and sorted(os.listdir(kept)) == made
    # Graded on the pack's kernel: the run's own cache holds none.
    assert results["score"] == 10, results
    assert not os.path.exists(tmp_path / "empty" / "kernel")
    # setup.sh saved the VM the run restores (and built the kit's objects,
    # above): the run booted nothing cold.
    log = (root / "results" / "grade.log").read_text()
    assert "booted this machine once" not in log and "booting cold" not in log, log
    assert "students' code built in the" in results["output"]


def test_a_pack_from_another_compiler_is_refused(tmp_path):
    from kernel import pack as kernel_pack
    pack = kernel_pack.pack("fast", str(tmp_path / "pack.tar.gz"))
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "gcc").write_text("#!/bin/sh\necho 'gcc (Ubuntu 11.4.0-1ubuntu1~22.04) 11.4.0'\n")
    (fake / "gcc").chmod(0o755)
    cmd, env = lab.entry_point("kernel.pack", "unpack", pack, str(tmp_path / "cache"))
    env["PATH"] = f"{fake}:{os.environ['PATH']}"
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "this machine has 'gcc (Ubuntu 11.4.0-1ubuntu1~22.04) 11.4.0'" in proc.stderr


def test_the_bundle_refuses_a_hostile_build_and_shows_why(tmp_path):
    """A file that embeds a host file (with an assembler directive) is
    refused before it builds: the student sees why, and no line of the
    host's file."""
    root, _names = unpacked(tmp_path)
    hostile = 'asm(".section .rodata\\n.incbin \\"/etc/passwd\\"\\n.previous");\n' + solution()
    _run, results, text = autograde(root, dict(os.environ, KDKIT_GS_ROOT=str(root)), hostile)
    assert results["score"] == 0
    assert "hello.c:1: inline assembly ('asm')" in text
    with open("/etc/passwd") as f:
        assert f.readline().strip() not in text
