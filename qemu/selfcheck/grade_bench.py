"""make bench-grade: grading throughput on a generated batch of 20
submissions (solutions, mutants, hostile ones and a skeleton), with
JOBS=1 and JOBS=2 (or the JOBS given), on the fast kernel or the strict
one (--strict), and a check that grades.csv holds the expected scores.

  python3 -m selfcheck.grade_bench [--strict] [--jobs N]
"""
import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time

from grader import rubric
from harness import lab as labmod
from kernel import source as kernel_source

KIT = labmod.KIT
FIXTURES = os.path.join(KIT, "qemu", "tests", "fixtures")


def solution(folder):
    for lab in labmod.labs():
        for f in labmod.student_files(lab):
            shutil.copy(os.path.join(KIT, "solutions", lab, f), folder)


def defect(lab, patch):
    def make(folder):
        solution(folder)
        labmod.patched_solution(lab, patch, folder)
    return make


def batch(root):
    """Write the 20 submissions; return {student: {lab: 'full' | 'less' | points}}."""
    full = {lab: "full" for lab in labmod.labs()}
    plan = {f"solution-{n}": (solution, {}) for n in range(1, 5)}
    for name in ("hello-panic", "grade/oops-in-init", "grade/deadlock-in-init"):
        plan[f"hello-{os.path.basename(name)}"] = (
            defect("hello", os.path.join(FIXTURES, f"{name}.patch")), {"hello": 7})
    plan["hello-compile-error"] = (defect("hello", os.path.join(FIXTURES, "grade", "compile-error.patch")),
                                   {"hello": 0})

    def linked(folder):
        solution(folder)
        os.remove(os.path.join(folder, "hello.c"))
        os.symlink("/etc/passwd", os.path.join(folder, "hello.c"))
    plan["hello-symlink"] = (linked, {"hello": 0})

    def missing(folder):
        solution(folder)
        os.remove(os.path.join(folder, "vser.c"))
    plan["vser-missing"] = (missing, {"vser": 0})
    for lab, numbers in (("vser", "168"), ("fsled", "359"), ("dma", "479")):
        patches = labmod.mutants(lab)
        for n in numbers:
            p = patches[int(n)]
            plan[f"{lab}-mutant-{os.path.basename(p)[:-6]}"] = (defect(lab, p), {lab: "less"})

    def skeleton(folder):
        for lab in labmod.labs():
            for f in labmod.student_files(lab):
                shutil.copy(os.path.join(KIT, "labs", lab, f), folder)
    plan["skeleton"] = (skeleton, {"hello": 0, "vser": 0, "fsled": 0, "dma": 0})
    expected = {}
    for student, (make, want) in plan.items():
        folder = os.path.join(root, student)
        os.makedirs(folder)
        make(folder)
        expected[student] = dict(full, **want)
    return expected


def check_csv(path, expected):
    maxima = {lab: sum(i.points for i in rubric.load(lab)) for lab in labmod.labs()}
    wrong = []
    with open(path) as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    for student, want in expected.items():
        row = rows.get(student)
        for lab, w in want.items():
            got = float(row[lab]) if row else None
            ok = got is not None and (got == maxima[lab] if w == "full" else
                                      got < maxima[lab] if w == "less" else got == w)
            if not ok:
                wrong.append(f"{student} {lab}: {got}, expected {w}")
    return wrong


def main():
    p = argparse.ArgumentParser(prog="grade_bench")
    p.add_argument("--strict", action="store_true")
    p.add_argument("--jobs", type=int)
    args = p.parse_args()
    flavour = kernel_source.flavour(args.strict)
    all_right = True
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "batch")
        expected = batch(root)
        for jobs in [args.jobs] if args.jobs else (1, 2):
            out = os.path.join(tmp, f"out-{jobs}")
            t0 = time.monotonic()
            cmd, env = labmod.entry_point("grader.grade", "--submissions", root, "--jobs", str(jobs),
                                          "--out", out, *(["--strict"] if args.strict else []))
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            secs = time.monotonic() - t0
            wrong = check_csv(os.path.join(out, "grades.csv"), expected) if proc.returncode == 0 \
                else [proc.stderr.strip()]
            print(f"bench-grade ({flavour}): {len(expected)} submissions, {len(labmod.labs())} labs, "
                  f"JOBS={jobs}: "
                  f"{secs:.0f} s, {len(expected) / secs * 60:.2f} submissions/min; "
                  + ("grades.csv as expected" if not wrong else "WRONG: " + "; ".join(wrong)))
            all_right = all_right and not wrong
    # A time for a wrong result measures nothing.
    return 0 if all_right else 1


if __name__ == "__main__":
    sys.exit(main())
