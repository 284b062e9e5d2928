"""make check: the kit's own tests, totalled in one "N passed, N failed, N skipped" line.

1. the harness's unit and end-to-end tests (pytest, qemu/tests), and its
   unit tests and one hello run under the oldest Python found (3.9 or
   3.10, the floor the kit supports);
2. labs/ is exactly what the generator makes from solutions/;
3. every lab's reference solution passes every case, on both kernels;
4. every skeleton builds without a warning, runs to the end and fails;
   every mutant (kunit/<lab>/mutants/*.patch, the solution with one defect)
   loses points under the lab's rubric, on the fast kernel or else the
   strict one, by its tests and not by the object check; each
   alternative solution (kunit/<lab>/alternatives/<style>/) passes every
   case on both kernels; kunit/<lab>/imports.txt lists what the reference
   and the alternatives import (qemu/harness/objcheck.py,
   qemu/selfcheck/imports.py); the object check refuses no mainline
   driver but for a capability (qemu/selfcheck/corpus.py);
5. the reference solutions and the kit's kernel code (not the userspace
   tests) are clean under
   checkpatch --strict (with the suites), and build without a warning
   with W=1 and sparse;
6. the device tree sources in common/ compile with dtc, without a warning;
7. the course (qemu/selfcheck/doccheck.py): both audiences build with sphinx -W, an
   exercise per TODO, every rubric item on its lab page, no solution line
   in the student build, every setting in the reference.
"""
import contextlib
import glob
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from grader import grade
from harness import kbuild, lifetime
from harness import lab as labmod
from kernel import source as kernel_source
from selfcheck import doccheck, imports

KIT = labmod.KIT

SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?")
totals = {"passed": 0, "failed": 0, "skipped": 0}
skips = []      # what was skipped, and why: make check's last lines name each


def run(cmd, env=None):
    return subprocess.run(cmd, cwd=KIT, capture_output=True, text=True, env=env)


def verdict(name, ok, detail=""):
    totals["passed" if ok else "failed"] += 1
    print(f"[{'PASSED' if ok else 'FAILED'}] {name}")
    if not ok and detail:
        print("    " + detail.rstrip().replace("\n", "\n    "))


def skipped(name, why, n=1):
    totals["skipped"] += n
    skips.append(f"{name}: {why}" + (f" ({n})" if n > 1 else ""))
    print(f"[SKIPPED] {name}: {why}")


def start_pytest():
    """The harness tests, started now to run beside the other steps (two
    cores nearly halve make check): pytest_step() reports them. Their
    output goes to a file, which no pipe's size limits."""
    out = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                             "qemu/tests"], cwd=KIT, stdout=out, stderr=subprocess.STDOUT, text=True)
    return proc, out


def pytest_step(started):
    proc, out = started
    proc.wait()
    out.seek(0)
    text = out.read()
    last = text.strip().splitlines()[-1] if text.strip() else ""
    passed = int(m[1]) if (m := re.search(r"(\d+) passed", last)) else 0
    failed = sum(int(n) for n in re.findall(r"(\d+) (?:failed|error)", last))
    totals["passed"] += passed
    totals["failed"] += failed
    print(f"[{'PASSED' if proc.returncode == 0 else 'FAILED'}] harness tests: {last}")
    # pytest -rs: "SKIPPED [2] qemu/tests/test_x.py:35: why".
    for n, where, why in re.findall(r"^SKIPPED \[(\d+)\] (\S+?):\d+: (.*)$", text, re.M):
        skipped(f"harness tests in {os.path.basename(where)}", why, int(n))
    # A machine that can make a sandbox must test it: grading needs one.
    if not sandbox_runs():
        verdict("a sandbox tier runs here, so the sandbox tests ran", False,
                "neither bubblewrap nor the jail can run here; grading cannot run either")
    if proc.returncode != 0:
        print(text[-8000:])
        if not failed:
            totals["failed"] += 1


# The harness supports Python 3.9 and newer (Ubuntu 22.04 has 3.10); these
# tests need no VM, and one hello run covers the front end end to end.
OLD_PYTHON_TESTS = ["test_ktap.py", "test_results.py", "test_rubric.py", "test_skelgen.py",
                    "test_lab.py", "test_ledpanel.py", "test_doccheck.py",
                    "test_kernel_source.py", "test_layout.py"]


def oldest_python():
    """A Python 3.9 (else 3.10) on PATH or in pyenv, or None."""
    for minor in ("3.9", "3.10"):
        found = shutil.which(f"python{minor}")
        found = found and subprocess.run([found, "-V"], capture_output=True).returncode == 0 and found
        pyenv = glob.glob(os.path.expanduser(f"~/.pyenv/versions/{minor}.*/bin/python{minor}"))
        if found or pyenv:
            return found or sorted(pyenv)[-1]
    return None


def sandbox_runs():
    """Whether a sandbox tier of the grader's can be made here."""
    from harness import sandbox
    for tier in sandbox.TIERS:
        os.environ["KDKIT_SANDBOX"] = tier
        sandbox.tier.cache_clear()
        try:
            sandbox.tier()
            return True
        except sandbox.SandboxError:
            continue
        finally:
            del os.environ["KDKIT_SANDBOX"]
            sandbox.tier.cache_clear()
    return False


def old_python_step():
    py = oldest_python()
    if not py:
        skipped("harness tests under Python 3.9 or 3.10", "neither is installed here "
                "(pyenv install 3.9 tests the README's floor)")
        return
    version = run([py, "-V"]).stdout.strip()
    # Debian's pytest is pure Python: the old interpreter borrows it.
    env = dict(os.environ, PYTHONPATH="/usr/lib/python3/dist-packages")
    proc = subprocess.run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider"] +
                          [os.path.join("qemu", "tests", t) for t in OLD_PYTHON_TESTS],
                          cwd=KIT, capture_output=True, text=True, env=env)
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
    verdict(f"harness unit tests under {version}: {last}", proc.returncode == 0,
            proc.stdout[-4000:] + proc.stderr[-2000:])
    proc = subprocess.run([py, "qemu/kdkit.py", "test", "hello", "--src", "solutions"],
                          cwd=KIT, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    verdict(f"make test LAB=hello SRC=solutions under {version}: "
            f"{lines[-1] if lines else 'no output'}", proc.returncode == 0,
            proc.stdout[-3000:] + proc.stderr[-2000:])


def kdkit_test(lab, src, strict=False):
    cmd = [sys.executable, "qemu/kdkit.py", "test", lab, "--src", src] + (["--strict"] if strict else [])
    proc = run(cmd)
    lines = proc.stdout.strip().splitlines()
    m = SUMMARY.match(lines[-1]) if lines else None
    return proc, m


def solution_step(lab, strict=False):
    proc, m = kdkit_test(lab, "solutions", strict)
    name = f"{lab} solution passes every case{' (strict kernel)' if strict else ''}"
    if m:
        totals["passed"] += int(m[1])
        totals["failed"] += int(m[2])
    ok = proc.returncode == 0 and m is not None and int(m[2]) == 0
    print(f"[{'PASSED' if ok else 'FAILED'}] {name}: {m[0] if m else 'no summary'}")
    if m and m[3]:
        why = [l.strip() for l in proc.stdout.splitlines() if l.strip().startswith("skipped: ")]
        skipped(name, "; ".join(why) or "no reason given", int(m[3]))
    if not ok:
        print(proc.stdout[-6000:] + proc.stderr[-3000:])
        if not m:
            totals["failed"] += 1


def skeleton_step(lab):
    proc, m = kdkit_test(lab, "labs")
    out = proc.stdout + proc.stderr
    problems = []
    if "warning:" in out:
        problems.append("the skeleton compiles with warnings")
    if proc.returncode != 1 or not m:
        problems.append(f"expected a clean failure (exit 1 with a summary), got exit {proc.returncode}")
    elif int(m[2]) == 0:
        problems.append("the skeleton passes every case: its TODOs test nothing")
    if "[CRASHED]" in out:
        problems.append("the skeleton crashes the kernel")
    verdict(f"{lab} skeleton builds and fails cleanly" + (f" ({m[0]})" if m else ""),
            not problems, "; ".join(problems) + "\n" + out[-4000:])
    # Every TODO of the skeleton is undone: no item may score for it.
    with tempfile.TemporaryDirectory() as tmp:
        with contextlib.redirect_stdout(io.StringIO()):
            g = grade.grade_lab("skeleton", lab, os.path.join(KIT, "labs", lab),
                                os.path.join(tmp, "out"), False)
    earned = [f"'{s.item.name}' ({s.points:g})" for s in g.scores if s.points]
    verdict(f"{lab} skeleton earns no point ({g.points:g}/{g.max_points:g})", not earned,
            "the untouched skeleton scores " + ", ".join(earned) + "; an item needs a case "
            "that only the TODOs' work passes")


def checkpatch_step():
    kdir = kernel_source.kernel_dir("fast")
    src = os.path.join(kdir, "source")
    checkpatch = os.path.join(os.path.realpath(src), "scripts", "checkpatch.pl")
    dirs = ["common"] + [f"{top}/{l}" for top in ("solutions", "kunit") for l in labmod.labs()]
    files = sorted(os.path.join(d, f) for d in dirs
                   for f in os.listdir(os.path.join(KIT, d))
                   if f.endswith((".c", ".h")) and not f.endswith(("_user.c", "_user.h")))
    for f in files:
        proc = run([checkpatch, "--strict", "--no-tree", "--quiet", "--terse", "-f", f])
        verdict(f"checkpatch --strict {f}", "total: 0 errors, 0 warnings, 0 checks" in proc.stdout, proc.stdout)


def dts_step():
    """The device tree sources the docs teach from compile, without a warning."""
    for f in sorted(glob.glob(os.path.join(KIT, "common", "*.dts"))):
        proc = run(["dtc", "-I", "dts", "-O", "dtb", "-o", os.devnull, f])
        name = os.path.relpath(f, KIT)
        verdict(f"dtc compiles {name} cleanly", proc.returncode == 0 and not proc.stderr.strip(),
                proc.stdout + proc.stderr)


def strict_build_step(lab):
    """W=1 and sparse (C=1) over the solution, alone (as make shell builds
    it) and linked with the suites and kdkit.ko (as make test does)."""
    kdir = kernel_source.kernel_dir("fast")
    for with_tests, how in ((False, "alone"), (True, "with its suites")):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                _mods, out, _origin = kbuild.build(lab, os.path.join(KIT, "solutions", lab), kdir, tmp,
                                                   with_tests=with_tests, extra=("W=1", "C=1"))
            except labmod.LabError as e:
                out = str(e) + "\nwarning: the build failed"
        verdict(f"{lab} solution builds {how} clean with W=1 and sparse", "warning" not in out, out)


def mutant_judged(lab, name, g, strict):
    """(caught, message) for one grade of a mutant, or None to try the next
    kernel. A mutant is caught only by a failing case of the kit's tests
    (or a kernel report): one that does not build, is refused, is flagged
    as forged, or loses points only to the time budget or a boot that made
    no progress shows nothing about the tests, and says which."""
    lost = [s for s in g.scores if not s.passed]
    if g.flags:
        return False, f"{lab} mutant {name} was flagged as forged results: " + g.flags[0]
    if any(s.why.startswith("refused") for s in lost):
        return False, f"{lab} mutant {name} is refused, not caught by its tests: " + "; ".join(g.notes)
    if any(s.why == f"{lab} did not build" for s in lost):
        return False, f"{lab} mutant {name} does not build: " + " ".join(g.notes[1:4])
    by_case = [s for s in lost if not s.why.startswith("needs ")
               and not g.details.get(s.item.name, [""])[0].startswith("not run:")]
    if by_case:
        where = " (strict kernel only)" if strict else ""
        return True, (f"{lab} mutant {name} is caught{where}: loses {g.max_points - g.points:g} of "
                      f"{g.max_points:g} points, first at '{by_case[0].item.name}' ({by_case[0].why})")
    if lost:
        return False, (f"{lab} mutant {name} loses points only to cases that never ran: "
                       + g.details.get(lost[0].item.name, [lost[0].why])[0])
    return None


def mutant_step(lab, patch):
    """The solution with one defect must lose points under the lab's rubric,
    to a failing case: fast kernel first, then the strict one (KASAN,
    lockdep) for what only it can see."""
    name = os.path.basename(patch)[:-len(".patch")]
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "submission")
        os.makedirs(src)
        try:
            labmod.patched_solution(lab, patch, src)
        except labmod.LabError as e:
            verdict(f"{lab} mutant {name} is caught", False, str(e))
            return
        for strict in (False, True):
            with contextlib.redirect_stdout(io.StringIO()):
                g = grade.grade_lab("mutant", lab, src, os.path.join(tmp, "out"), strict)
            judged = mutant_judged(lab, name, g, strict)
            if judged:
                caught, message = judged
                verdict(message if caught else f"{lab} mutant {name} is caught", caught,
                        "" if caught else message)
                return
    verdict(f"{lab} mutant {name} is caught", False, "full marks on both kernels: " + "; ".join(g.notes))


def alternative_step(lab, style, folder, strict):
    proc, m = kdkit_test(lab, os.path.relpath(folder, KIT), strict)
    verdict(f"{lab} alternative '{style}' passes every case"
            + (" (strict kernel)" if strict else "") + (f" ({m[0]})" if m else ""),
            proc.returncode == 0 and m is not None and int(m[2]) == 0,
            proc.stdout[-4000:] + proc.stderr[-2000:])


def imports_step(lab):
    """kunit/<lab>/imports.txt is current: it lists what the reference and
    the alternatives import, on both kernels, so only other calls are shown
    to the instructor as unusual."""
    ok, why = imports_judged(imports.reference_imports(lab), labmod.lab_imports(lab))
    verdict(f"{lab}: kunit/{lab}/imports.txt lists what the reference and alternatives import",
            ok, why + "\nrun PYTHONPATH=qemu python3 -m selfcheck.imports --update")


def imports_judged(found, listed):
    """(ok, why): the list holds exactly what the references import; a
    name they no longer call would let a student's call of it go unshown."""
    missing, extra = sorted(found - listed), sorted(listed - found)
    return not missing and not extra, "; ".join(
        ([f"not listed: {' '.join(missing)}"] if missing else [])
        + ([f"listed, but no reference calls it: {' '.join(extra)}"] if extra else []))


def corpus_step():
    """The object check refuses mainline drivers only for capabilities a
    lab's driver never needs (selfcheck/corpus.py)."""
    p = run(*labmod.entry_point("selfcheck.corpus"))
    last = (p.stdout.strip().splitlines() or ["no output"])[-1]
    verdict(f"object check on mainline drivers: {last.removeprefix('corpus: ')}",
            p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:])


def docs_step():
    for name, ok, detail in doccheck.checks():
        verdict(name, ok, detail)


def steps():
    """[(what, callable)] in the order they run, beside the harness tests."""
    yield "harness under the oldest Python", old_python_step
    yield "skeletons match solutions", lambda: verdict(
        "labs/ matches what solutions/ generates",
        (p := run(*labmod.entry_point("course.skelgen", "solutions", "labs", "--check"))).returncode == 0,
        p.stdout + p.stderr)
    for lab in labmod.labs():
        yield f"{lab} solution", lambda lab=lab: solution_step(lab)
        yield f"{lab} solution (strict)", lambda lab=lab: solution_step(lab, strict=True)
        yield f"{lab} skeleton", lambda lab=lab: skeleton_step(lab)
        yield f"{lab} W=1 and sparse", lambda lab=lab: strict_build_step(lab)
        yield f"{lab} mutants", lambda lab=lab: [mutant_step(lab, p) for p in labmod.mutants(lab).values()]
        for style, folder in labmod.alternatives(lab).items():
            for strict in (False, True):
                yield (f"{lab} alternative {style}" + (" (strict)" if strict else ""),
                       lambda lab=lab, s=style, f=folder, strict=strict: alternative_step(lab, s, f, strict))
        yield f"{lab} imports", lambda lab=lab: imports_step(lab)
    yield "the object check on mainline drivers", corpus_step
    yield "checkpatch", checkpatch_step
    yield "dtc", dts_step
    yield "course docs", docs_step


def main():
    start = time.monotonic()
    lifetime.adopt_orphans()
    harness = start_pytest()
    spent = []
    for what, step in steps():
        t0 = time.monotonic()
        step()
        spent.append((time.monotonic() - t0, what))
    pytest_step(harness)
    spent.append((time.monotonic() - start, "harness tests (pytest, beside the rest)"))
    leftovers_step()
    total = time.monotonic() - start
    # Where the time went, slowest first: what to speed up next.
    print(f"time: {total:.0f} s in all; slowest first (the harness tests ran beside the rest):")
    for secs, what in sorted(spent, reverse=True)[:12]:
        print(f"  {secs:6.1f} s  {100 * secs / total:4.1f}%  {what}")
    print("\n".join(last_lines()))
    return 1 if totals["failed"] else 0


def leftovers_step():
    """Nothing make check started (QEMU, gdb, inotifywait, cat) outlives it:
    orphans come to this process (lifetime.adopt_orphans), and any still
    alive are named, fail the check, and are killed."""
    left = lifetime.leftovers()
    verdict("make check leaves no process of its own behind", not left,
            ", ".join(f"{comm} (pid {pid})" for pid, comm in left))
    for pid, _comm in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def last_lines():
    """make check's last lines: each skip named, then the totals."""
    return ([f"skipped: {skip}" for skip in skips]
            + [f"{totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped"])


if __name__ == "__main__":
    sys.exit(main())
