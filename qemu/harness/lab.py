"""What a lab is: its files, suites, cases, mutants and board.

A lab <id> has its reference files in solutions/<id>/ (the student edits the
same names), its KUnit suites in kunit/<id>/*_test.c (one suite a file), and
shares headers in common/. How its modules are built is kbuild.py's.
"""
import fnmatch
import os
import re
import shutil
import subprocess
import sys
from typing import NamedTuple

# The kit's top folder: every other part of the kit finds its files from here.
KIT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def entry_point(module, *args):
    """(command, environment) that run one of the kit's Python entry points,
    python3 -m module (grader.grade, course.skelgen...), from any folder."""
    env = dict(os.environ, PYTHONPATH=os.path.join(KIT, "qemu"))
    return [sys.executable, "-m", module, *args], env


class LabError(Exception):
    """Bad input from the user: the message says what to do next."""

def labs():
    """Every lab id, in course order: the skeletons in labs/, which a
    grading bundle has and its solutions/ does not."""
    order = ["hello", "vser", "fsled", "dma"]
    have = set(os.listdir(os.path.join(KIT, "labs")))
    return [l for l in order if l in have] + sorted(have - set(order))


def check_lab(lab):
    if not lab:
        raise LabError(f"say which lab, e.g. 'make test LAB=hello'; the labs are: {' '.join(labs())}")
    if lab not in labs():
        raise LabError(f"unknown lab '{lab}'; the labs are: {' '.join(labs())}")


def student_files(lab):
    """The files a student provides for a lab: the names in labs/<lab>/
    (make skels makes them from solutions/<lab>/, and make check says so)."""
    return sorted(os.listdir(os.path.join(KIT, "labs", lab)))


def private_dir(lab):
    """An instructor's extra suites for lab, kept out of the student
    distribution: $KDKIT_PRIVATE/<lab>/, with a rubric.toml of their own."""
    root = os.environ.get("KDKIT_PRIVATE")
    d = os.path.join(os.path.abspath(root), lab) if root else None
    return d if d and os.path.isdir(d) else None


def _test_sources(lab, suffix):
    dirs = [os.path.join(KIT, "kunit", lab)] + list(filter(None, [private_dir(lab)]))
    return [os.path.join(d, f) for d in dirs for f in sorted(os.listdir(d)) if f.endswith(suffix)]


def suite_files(lab):
    """KUnit suites, linked into the lab's test module."""
    return _test_sources(lab, "_test.c")


def user_files(lab):
    """Userspace suites (common/ktap_user.h), run in the VM as programs."""
    return _test_sources(lab, "_user.c")


CASE = re.compile(r"^\s*(?:KUNIT_CASE|UCASE)\((\w+)\)")
USER_SUITE = re.compile(r'^\s*return ktap_run\("(\w+)"')
SUITE_NAME = re.compile(r'^\s*\.name\s*=\s*"(\w+)"')


def expected_cases(lab):
    """[(suite, [case, ...])] in the order KUnit will run them.

    Read from the kit's own test sources, never from the run, so a case that
    does not report is noticed. Each file holds one suite, whose case list
    is written as KUNIT_CASE(name) lines.
    """
    plan = []
    for path in suite_files(lab) + user_files(lab):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        pattern = USER_SUITE if path.endswith("_user.c") else SUITE_NAME
        names = [m[1] for m in map(pattern.match, text.splitlines()) if m]
        cases = [m[1] for m in map(CASE.match, text.splitlines()) if m]
        if len(names) != 1 or not cases:
            raise LabError(f"{path}: a test file must hold one suite with KUNIT_CASE() lines")
        plan.append((names[0], cases))
    return plan


def case_count(lab):
    """How many cases the lab's suites have: what a passing make test counts."""
    return sum(len(cases) for _suite, cases in expected_cases(lab))


def resolve_src(lab, src):
    """The folder holding the student's files for this lab."""
    base = os.path.join(KIT, src) if src in ("labs", "solutions") else os.path.abspath(src)
    if not os.path.isdir(base):
        raise LabError(f"SRC={src} is not a folder; use labs, solutions or a folder with {lab}'s files")
    for d in (os.path.join(base, lab), base):
        if all(os.path.isfile(os.path.join(d, f)) for f in student_files(lab)):
            return d
    missing = [f for f in student_files(lab) if not os.path.isfile(os.path.join(base, lab, f))]
    raise LabError(f"SRC={src} has no {lab}/{missing[0]} (nor {missing[0]} at its top); "
                   f"lab {lab} needs: {' '.join(student_files(lab))}")


MUTANT = re.compile(r"^(\d+)-.+\.patch$")


def mutants(lab):
    """The lab's mutants, kunit/<lab>/mutants/N-what.patch (the solution
    with one defect each), as {N: path} in number order: 2 before 10."""
    d = os.path.join(KIT, "kunit", lab, "mutants")
    found = {int(m[1]): os.path.join(d, m[0])
             for m in map(MUTANT.match, os.listdir(d) if os.path.isdir(d) else []) if m}
    return dict(sorted(found.items()))


def alternatives(lab):
    """The lab's other correct solutions, kunit/<lab>/alternatives/<style>/,
    each written the way some students write it: {style: folder}."""
    d = os.path.join(KIT, "kunit", lab, "alternatives")
    return {name: os.path.join(d, name) for name in sorted(os.listdir(d) if os.path.isdir(d) else [])
            if os.path.isdir(os.path.join(d, name))}


def patch_base(lab, patch):
    """The folder a patch applies to: the lab's solution, or the
    alternative its header names ("Base: alternatives/<style>"), for a
    defect only a driver written that way can have."""
    with open(patch) as p:
        for line in p:
            if line.startswith("--- "):
                break
            if line.startswith("Base: "):
                style = line.split(":", 1)[1].strip().removeprefix("alternatives/")
                if style not in alternatives(lab):
                    raise LabError(f"{patch}: no alternative '{style}' in kunit/{lab}/alternatives")
                return alternatives(lab)[style]
    return os.path.join(KIT, "solutions", lab)


def patched_solution(lab, patch, dest):
    """Copy lab's solution files (or the alternative the patch names) into
    dest and apply one defect to them: how the harness fixtures and the lab
    mutants are made. Raises LabError if the patch no longer applies."""
    base = patch_base(lab, patch)
    for f in student_files(lab):
        shutil.copyfile(os.path.join(base, f), os.path.join(dest, f))
    with open(patch) as p:
        # No fuzz: a patch that only applies loosely has drifted from the
        # code it was written for, and may no longer make its defect.
        proc = subprocess.run(["patch", "-s", "-p1", "-F0", "--no-backup-if-mismatch", "-d", dest],
                              stdin=p, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise LabError(f"{patch} no longer applies to {os.path.relpath(base, KIT)}; update it\n{proc.stdout}")
    return dest


class Board(NamedTuple):
    """What a lab's VM has beyond the kernel: the QEMU devices that
    common/board.c turns into platform devices, vCPUs, and the tools from
    common/ that its shell offers in /usr/bin."""
    devices: tuple = ()
    cpus: int = 1
    tools: tuple = ()
    cmdline: str = ""    # kernel arguments added for this lab
    icount: bool = False  # virtual time skips idle waits (edu's 100 ms DMA timer)


BOARDS = {
    # Two vCPUs, so that two threads can run into the driver at once
    # (common/kdkit_interleave.c needs one CPU for each).
    "vser": Board(cpus=2),
    "fsled": Board(devices=("gpio",), cpus=2, tools=("ledctl",)),
    # Every streaming mapping bounces (an 8 MB swiotlb: quicker to set up and
    # to fill), so DMA mistakes show as wrong data; icount lets virtual time
    # skip edu's 100 ms DMA timer while the guest waits.
    # The guest's 256 MB (vm.MEMORY) also keeps the swiotlb, placed high in
    # RAM, within the 28 address lines edu drives.
    "dma": Board(devices=("edu",), cmdline="swiotlb=4096,force", icount=True),
}


def board(lab):
    return BOARDS.get(lab, Board())


def selected_cases(lab, pattern):
    """The part of lab's plan that CASE=pattern names: suites, cases or
    suite.case, each a shell glob; several separated by commas or spaces."""
    globs = pattern.replace(",", " ").split()
    plan = []
    for suite, cases in expected_cases(lab):
        chosen = [c for c in cases if any(fnmatch.fnmatchcase(name, g) for g in globs
                                          for name in (suite, c, f"{suite}.{c}"))]
        if chosen:
            plan.append((suite, chosen))
    if not plan:
        example = "{}.{}".format(*next((s, cs[0]) for s, cs in expected_cases(lab)))
        raise LabError(f"CASE={pattern} names no case of {lab}: give a suite, a case or "
                       f"suite.case, globs allowed (e.g. CASE={example}); "
                       f"make test LAB={lab} lists them all")
    return plan


def _symbols(path):
    """Symbols listed in a file, a name a line; '#' starts a comment."""
    try:
        with open(path) as f:
            return {l.split("#")[0].strip() for l in f} - {""}
    except FileNotFoundError:
        return set()


def imports_file(lab):
    return os.path.join(KIT, "kunit", lab, "imports.txt")


def lab_imports(lab):
    """What kunit/<lab>/imports.txt lists: the lab's references' calls."""
    return _symbols(imports_file(lab))


def usual_imports(lab):
    """What a driver for lab usually imports (harness/objcheck.py lists
    the rest for the instructor): kunit/<lab>/imports.txt (selfcheck/imports.py
    writes it) and common/imports.txt (written by hand)."""
    return lab_imports(lab) | _symbols(os.path.join(KIT, "common", "imports.txt"))


def instructor_allowed():
    """Calls the object check refuses that the instructor allows:
    KDKIT_ALLOW_IMPORTS=name,name."""
    return {n.strip() for n in os.environ.get("KDKIT_ALLOW_IMPORTS", "").split(",")} - {""}
