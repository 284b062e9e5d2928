"""Grade submissions: each student's files, in a scratch tree of their own,
tested on the kit kernel and scored with each lab's rubric.

  python3 -m grader.grade [--submission DIR | --submissions DIR]
                          [--labs vser,fsled] [--jobs N] [--out DIR]

A submission holds only the files students edit (vser.c, fsled.c, ...),
flat or in <lab>/ folders. Everything else comes from the kit. Results go
to the terminal and to --out: results.json (Gradescope's format),
junit.xml, grades.csv, and a folder a student with their logs.
"""
import argparse
import concurrent.futures
import csv
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from typing import NamedTuple

from grader import rubric
from harness import kbuild, machine, results, runner, sandbox
from harness import lab as labmod
from kernel import source as kernel_source

MAX_FILE = 256 * 1024      # bytes: a driver source is a few KiB
BUILD_LINES = 40           # lines of compiler messages a report shows


class LabGrade(NamedTuple):
    lab: str
    scores: list        # [rubric.Score]
    notes: list         # intake and build messages, one line each
    style: dict         # file -> checkpatch findings
    logs: str           # where the consoles are kept, or ""
    details: dict = {}  # item name -> the failing case's first messages
    flags: list = []    # evidence that the results were forged, for the instructor

    @property
    def points(self):
        return sum(s.points for s in self.scores)

    @property
    def max_points(self):
        return sum(s.item.points for s in self.scores)


def intake(lab, subdir, scratch, report_flat_extras=False):
    """Copy lab's files from a submission into scratch, refusing what is
    not a plain, small file of an expected name. Returns (complete, notes)."""
    want = labmod.student_files(lab)
    notes, complete = [], True
    # Every part of the path below the submission is checked: a linked lab
    # folder would lead the intake anywhere (the kit's solutions).
    if os.path.islink(os.path.join(subdir, lab)):
        return False, [f"{lab}/: a symbolic link, not a folder; refused"]
    base = os.path.join(subdir, lab) if os.path.isdir(os.path.join(subdir, lab)) else subdir
    if base != subdir:
        for extra in sorted(set(os.listdir(base)) - set(want)):
            notes.append(f"{lab}/{student_name(extra)}: not a file of lab {lab} "
                         f"({', '.join(want)}); ignored")
    elif report_flat_extras:
        known = set(labmod.labs()) | {f for l in labmod.labs() for f in labmod.student_files(l)}
        for extra in sorted(set(os.listdir(base)) - known):
            notes.append(f"{student_name(extra)}: not a file of any lab; ignored")
    for name in want:
        src = os.path.join(base, name)
        try:
            st = os.lstat(src)
        except FileNotFoundError:
            notes.append(f"{name}: missing; lab {lab} needs it")
            complete = False
            continue
        why = ("is a symbolic link" if stat.S_ISLNK(st.st_mode) else
               "is not a regular file" if not stat.S_ISREG(st.st_mode) else
               f"is {st.st_size} bytes, over the {MAX_FILE // 1024} KiB limit"
               if st.st_size > MAX_FILE else "")
        if why:
            notes.append(f"{name}: {why}; refused")
            complete = False
            continue
        # O_NOFOLLOW: a link swapped in after the check is refused too.
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f, open(os.path.join(scratch, name), "wb") as out:
            out.write(f.read(MAX_FILE + 1)[:MAX_FILE])
    return complete, notes


STYLE_SECONDS = 60
MAX_STYLE_LINES = 200


def style(files, flavour="fast"):
    """checkpatch --strict findings per file, from the kernel tree grading
    uses (the only one a grading image may have)."""
    src = os.path.realpath(os.path.join(kernel_source.kernel_dir(flavour), "source"))
    found = {}
    for path in files:
        # checkpatch leaves a cache file in any git tree it runs in (the kit
        # is one): a GIT_DIR that does not exist tells it there is none.
        env = dict(os.environ, GIT_DIR=os.path.join(os.path.dirname(path), ".no-git"))
        try:
            proc = subprocess.run([os.path.join(src, "scripts", "checkpatch.pl"), "--strict",
                                   "--no-tree", "--quiet", "--terse", "--show-types", "-f", path],
                                  capture_output=True, text=True, cwd=os.path.dirname(path),
                                  env=env, timeout=STYLE_SECONDS)
            out = proc.stdout
        except subprocess.TimeoutExpired:
            # A file built to make checkpatch crawl (thousands of nested
            # ifs) costs the grade nothing: style earns no points.
            out = f"{path}:1: CHECK: checkpatch gave up after {STYLE_SECONDS} s\n"
        lines = [l.replace(path + ":", os.path.basename(path) + ":")
                 for l in out.splitlines()[:MAX_STYLE_LINES] if not l.startswith("total:")]
        found[os.path.basename(path)] = lines
    return found


def grade_lab(student, lab, subdir, out, strict, first=False, vms=1):
    """Grade one lab of one submission, with up to vms VMs at once; never
    raises for the student's input."""
    items = rubric.load(lab)
    folder = os.path.join(out, student, lab)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    scratch = tempfile.mkdtemp(prefix="files-", dir=folder)
    complete, notes = intake(lab, subdir, scratch, report_flat_extras=first)
    zero = lambda why: [rubric.Score(i, 0, False, why) for i in items]
    if not complete:
        return LabGrade(lab, zero("not graded: " + notes[-1]), notes, {}, "")
    # checkpatch reads the files while they build and run.
    aside = concurrent.futures.ThreadPoolExecutor(1)
    styled = aside.submit(style, [os.path.join(scratch, f) for f in labmod.student_files(lab)],
                          kernel_source.flavour(strict))
    aside.shutdown(wait=False)
    # The build and the boots get names of their own: nothing a student
    # named (a folder, a file) reaches make, a shell or QEMU's options.
    bdir = tempfile.mkdtemp(prefix="kdkit-build-")
    runs = tempfile.mkdtemp(prefix="kdkit-runs-")
    try:
        run = runner.run_lab(lab, scratch, strict, bdir=bdir, runs=runs, sandboxed=True, vms=vms,
                            moot=lambda outcome: rubric.moot(items, outcome))
    except kbuild.ObjectRefused as e:
        problems = str(e).splitlines()
        return LabGrade(lab, zero(f"refused: {problems[0]}"),
                        notes + [f"{lab} refused: {p}" for p in problems], styled.result(), folder)
    except (labmod.LabError, kernel_source.SourceError) as e:
        messages = str(e).replace(scratch + os.sep, "")
        with open(os.path.join(folder, "build.log"), "w") as f:
            f.write(messages + "\n")
        # The compiler's own lines, capped, are what the student needs.
        lines = messages.splitlines()
        shown = lines[:BUILD_LINES] + ([f"[{len(lines) - BUILD_LINES} more lines in build.log]"]
                                       if len(lines) > BUILD_LINES else [])
        return LabGrade(lab, zero(f"{lab} did not build"),
                        notes + [f"{lab} did not build:"] + shown, styled.result(), folder)
    finally:
        shutil.rmtree(bdir, ignore_errors=True)
    logs = os.path.join(folder, "logs")
    shutil.move(run.workdir, logs)
    shutil.rmtree(runs, ignore_errors=True)
    run = run._replace(workdir=logs)
    scores = rubric.score(items, run.outcome)
    notes += run.outcome.notes
    # Paths as the student knows them: their files by name, the kit's by its own.
    home = lambda l: kbuild.point_home(l, run.origin).replace(scratch + os.sep, "")
    with open(os.path.join(folder, "report.txt"), "w") as f:
        f.write("\n".join(results.report_lines(run.outcome, home)) + "\n")
    return LabGrade(lab, scores, notes, styled.result(), run.workdir,
                    failure_messages(scores, run, home), run.outcome.flags)


def failure_messages(scores, run, home):
    """For each failed item, the first lines its first failing case (or
    kernel report) gave, with paths passed through home()."""
    details = {}
    for s in scores:
        if s.passed:
            continue
        # (never ran, lines) in the item's order: the first that ran wins.
        found = []
        for suite, c in s.item.cases:
            case = run.outcome.cases[suite].get(c)
            if case and case.status != "PASSED" and case.log:
                found.append((case.log[0].startswith("not run:"), case.log))
            if suite in run.outcome.health:
                found.append((False, run.outcome.health[suite][0]))
        if found:
            details[s.item.name] = [home(l) for l in min(found, key=lambda f: f[0])[1][:6]]
    return details


def failure_detail(grade, score):
    """The lines a failed item shows: why, the hint, where the logs are."""
    lines = [f"why: {score.why}"]
    lines += [f"  {l}" for l in grade.details.get(score.item.name, [])]
    lines.append(f"hint: {score.item.hint}")
    if grade.logs:
        lines.append(f"logs: {grade.logs}")
    return lines


def print_terminal(student, grades):
    print(f"== {student}")
    total = maximum = 0
    for g in grades:
        print(f"  {g.lab}: {g.points:g}/{g.max_points:g}" + ("  FLAGGED" if g.flags else ""))
        for note in g.notes:
            print(f"    ! {note}")
        for s in g.scores:
            mark = "ok  " if s.passed else "FAIL"
            print(f"    [{mark}] {s.points:g}/{s.item.points:g}  {s.item.name}")
            if not s.passed:
                for line in failure_detail(g, s):
                    print(f"           {line}")
        for name, lines in g.style.items():
            if lines:
                print(f"    style ({name}, checkpatch --strict, no points): {len(lines)} finding(s)")
                for line in lines[:5]:
                    print(f"      {line}")
        total += g.points
        maximum += g.max_points
    print(f"  total: {total:g}/{maximum:g}")


def gradescope(grades):
    """results.json in Gradescope's autograder format."""
    tests = []
    for g in grades:
        for s in g.scores:
            output = "passed" if s.passed else "\n".join(failure_detail(g, s))
            tests.append({"name": f"{g.lab}: {s.item.name}", "score": s.points,
                          "max_score": s.item.points, "output": output,
                          "visibility": s.item.visibility})
        style_lines = [f"{n}: {l}" for n, ls in g.style.items() for l in ls]
        if style_lines or g.notes:
            tests.append({"name": f"{g.lab}: notes and style (no points)", "score": 0,
                          "max_score": 0, "visibility": "visible",
                          "output": "\n".join(g.notes + style_lines)})
    return {"score": sum(g.points for g in grades), "tests": tests,
            "output": f"Graded by kdkit on the kit kernel in QEMU; {sandbox_said()}."}


def sandbox_said():
    return f"students' code built in the {sandbox.tier()} sandbox"


def junit(graded):
    """JUnit XML: a testsuite a student and lab, a testcase a rubric item."""
    root = ET.Element("testsuites")
    for student, grades in graded.items():
        for g in grades:
            suite = ET.SubElement(root, "testsuite", name=f"{student}.{g.lab}",
                                  tests=str(len(g.scores)),
                                  failures=str(sum(not s.passed for s in g.scores)))
            for s in g.scores:
                case = ET.SubElement(suite, "testcase", classname=f"{student}.{g.lab}",
                                     name=s.item.name)
                if not s.passed:
                    fail = ET.SubElement(case, "failure", message=s.why)
                    fail.text = "\n".join(failure_detail(g, s))
    return ET.ElementTree(root)


def gradebook(graded, labs, path):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student"] + labs + ["total", "flagged"])
        for student, grades in sorted(graded.items()):
            by_lab = {g.lab: g.points for g in grades}
            w.writerow([student] + [f"{by_lab.get(l, 0):g}" for l in labs]
                       + [f"{sum(by_lab.values()):g}", " ".join(g.lab for g in grades if g.flags)])


# What the batch writes beside the students' folders in its output.
BATCH_FILES = {"junit.xml", "grades.csv"}


def student_name(folder):
    """How a student's folder name is shown and written (terminal, CSV,
    JUnit, JSON, the output folder): bytes that are not UTF-8 and control
    characters as \\xNN escapes, and never a name of the batch's own files."""
    text = folder.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 0x100 else
                   f"\\u{ord(c):04x}" for c in text)
    return "_" + text if text in BATCH_FILES or text.startswith(".") else text


def submissions(args):
    """[(student, folder)] from the command line: student is the folder's
    name as student_name() writes it, unique in the batch."""
    if args.submission and args.submissions:
        raise labmod.LabError("give SUBMISSION= or SUBMISSIONS=, not both")
    if args.submissions:
        if not os.path.isdir(args.submissions):
            raise labmod.LabError(f"SUBMISSIONS={args.submissions} is not a folder")
        found = sorted(d for d in os.listdir(args.submissions)
                       if os.path.isdir(os.path.join(args.submissions, d))
                       and not os.path.islink(os.path.join(args.submissions, d)))
        if not found:
            raise labmod.LabError(f"SUBMISSIONS={args.submissions} holds no student folders")
        named, seen = [], set()
        for d in found:
            name = student_name(d)
            while name in seen:     # two odd names escaped alike
                name += "~"
            seen.add(name)
            named.append((name, os.path.join(args.submissions, d)))
        return named
    one = args.submission or os.path.join(labmod.KIT, "labs")
    if not os.path.isdir(one):
        raise labmod.LabError(f"SUBMISSION={one} is not a folder")
    return [(student_name(os.path.basename(os.path.normpath(one))), one)]


def shard_of(spec):
    """SHARD=i/N as (i, N), 1 <= i <= N."""
    i, _, n = (spec or "").partition("/")
    if not (i.isdigit() and n.isdigit() and 1 <= int(i) <= int(n)):
        raise labmod.LabError(f"SHARD={spec} is not i/N with 1 <= i <= N, e.g. SHARD=1/4")
    return int(i), int(n)


def in_shard(student, shard):
    """Whether a student is in shard (i, N): by a hash of the name, so that
    each student's shard never changes as others are added."""
    i, n = shard
    return int(hashlib.sha256(student.encode("utf-8", "surrogateescape")).hexdigest(), 16) % n == i - 1


def main(argv):
    p = argparse.ArgumentParser(prog="grade", description=__doc__.splitlines()[0])
    p.add_argument("--submission")
    p.add_argument("--submissions")
    p.add_argument("--shard", help="i/N: grade only this share of the submissions")
    p.add_argument("--labs", default="")
    p.add_argument("--jobs", type=int, default=machine.jobs())
    p.add_argument("--out", default=os.path.join(labmod.KIT, "grades"))
    p.add_argument("--strict", action="store_true")
    args = p.parse_args(argv)
    try:
        labs = [l for l in args.labs.split(",") if l] or labmod.labs()
        for l in labs:
            labmod.check_lab(l)
            rubric.load(l)
        kernel_source.kernel_dir(kernel_source.flavour(args.strict))
        print(f"grade: {sandbox_said()}", flush=True)
        students = submissions(args)
        if args.shard:
            shard = shard_of(args.shard)
            students = [(s, f) for s, f in students if in_shard(s, shard)]
            print(f"grade: shard {args.shard}: {len(students)} submission(s)", flush=True)
        args.out = os.path.abspath(args.out)
        os.makedirs(args.out, exist_ok=True)
        jobs = {}
        # The cores the jobs leave idle run a lab's suites at once.
        vms = max(1, machine.jobs() // max(1, args.jobs))
        with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
            for student, folder in students:
                for l in labs:
                    jobs[student, l] = pool.submit(grade_lab, student, l, folder, args.out,
                                                   args.strict, l == labs[0], vms)
        graded = {s: [jobs[s, l].result() for l in labs] for s, _ in students}
    except (labmod.LabError, kernel_source.SourceError, rubric.RubricError,
            sandbox.SandboxError) as e:
        print(f"grade: {e}", file=sys.stderr)
        return 2
    for student, grades in graded.items():
        print_terminal(student, grades)
        with open(os.path.join(args.out, student, "results.json"), "w") as f:
            json.dump(gradescope(grades), f, indent=2)
    junit(graded).write(os.path.join(args.out, "junit.xml"), encoding="unicode")
    gradebook(graded, labs, os.path.join(args.out, "grades.csv"))
    print(f"grade: {len(graded)} submission(s); results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
