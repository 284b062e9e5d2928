"""The course's own checks, run by make check (and alone:
python3 -m selfcheck.doccheck).

- both audiences build with sphinx -W;
- each lab page has one "Exercise N" per TODO number of its skeleton;
- each rubric item is on its lab's rendered page;
- no line of a reference solution that the skeleton lacks reaches the
  student build (pages or search index), and all of them are in the
  instructor build;
- the reference page names every make variable and KDKIT_ setting;
- each concept chapter points to a lab that practises it;
- each diagram (docs/diagrams/*.dot) is drawn as SVG on a page.
"""
import glob
import html.parser
import os
import re
import sys
import tempfile

from course import docs, skelgen
from grader import rubric
from harness import lab as labmod

KIT = labmod.KIT
# Where the harness's code is: every file below it may read a setting.
QEMU = os.path.join(KIT, "qemu")


class _Text(html.parser.HTMLParser):
    """The text of an HTML page, without code blocks' line numbers."""

    def __init__(self):
        super().__init__()
        self.parts, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        if self.skip or (tag == "span" and ("class", "linenos") in attrs):
            self.skip += tag == "span"

    def handle_endtag(self, tag):
        if self.skip and tag == "span":
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def squeeze(text):
    return re.sub(r"\s+", " ", text).strip()


def page_text(path):
    with open(path, encoding="utf-8") as f:
        parser = _Text()
        parser.feed(f.read())
    return squeeze("".join(parser.parts))


def solution_only_lines(lab):
    """Lines of the lab's solution that its skeleton does not have: what a
    student must write. Short ones (a brace, "return 0;") prove nothing."""
    found = []
    for name in labmod.student_files(lab):
        with open(os.path.join(KIT, "solutions", lab, name), encoding="utf-8") as f:
            solution = [squeeze(l) for l in f]
        with open(os.path.join(KIT, "labs", lab, name), encoding="utf-8") as f:
            skeleton = {squeeze(l) for l in f}
        found += [l for l in solution if len(l) >= 20 and l not in skeleton
                  and not l.startswith(("/* END TODO", "/* skel:"))]
    return found


def exercises_match_todos(lab):
    page = os.path.join(KIT, "docs", "labs", f"{lab}.rst")
    if not os.path.isfile(page):
        return False, f"docs/labs/{lab}.rst is missing: every lab needs its page"
    todos = set()
    for f in labmod.student_files(lab):
        with open(os.path.join(KIT, "labs", lab, f), encoding="utf-8") as fh:
            todos |= set(skelgen.todo_numbers(fh.read()))
    with open(page, encoding="utf-8") as fh:
        exercises = set(re.findall(r"^Exercise (\d+)$", fh.read(), re.M))
    return todos == exercises, (f"TODOs without an exercise: {sorted(todos - exercises)}; "
                                f"exercises without a TODO: {sorted(exercises - todos)}")


def code_files():
    """The code the host runs under qemu/, every folder down, less the tests:
    Python, shell, and executable scripts without a suffix (run_autograder;
    not the guest's /init, whose KDKIT_ names are the guest's own)."""
    found = []
    for path in glob.glob(os.path.join(QEMU, "**", "*"), recursive=True):
        rel = os.path.relpath(path, QEMU)
        if os.path.isfile(path) and rel.split(os.sep)[0] != "tests" and (
                path.endswith((".py", ".sh")) or os.access(path, os.X_OK)):
            found.append(path)
    return sorted(found)


def documented_settings():
    """Make variables the Makefile reads, and KDKIT_ settings the harness reads."""
    with open(os.path.join(KIT, "Makefile"), encoding="utf-8") as f:
        make = set(re.findall(r"\$\(([A-Z][A-Z_]*)\)", f.read()))
    env = set()
    for path in code_files():
        with open(path, encoding="utf-8") as f:
            env |= set(re.findall(r"\bKDKIT_[A-Z_]+\b", f.read()))
    return sorted(make - {"MAKEFILE_LIST", "CURDIR"}), sorted(env)   # make's own


CASES_STATED = re.compile(r"\b([a-z_]+) \((\d+) cases")
FAILED_AT = re.compile(r"(?:EXPECTATION|ASSERTION) FAILED at ((?:kunit/\w+|common)/\w+\.[ch]):(\d+)")
TOTALS = re.compile(r"^\s*(\d+) passed, (\d+) failed(?:, (\d+) skipped)?(?:; (\d+) left out)?", re.M)
SUITE_HEADER = re.compile(r"^\s*=+ (\w+) \(\d+ cases\) =+", re.M)


def stated_files():
    """README.md and the course's sources: where the kit states counts."""
    docs_dir = os.path.join(KIT, "docs")
    found = [os.path.join(KIT, "README.md")]
    for dirpath, dirnames, files in os.walk(docs_dir):
        dirnames[:] = [d for d in dirnames if not d.startswith("_")]
        found += [os.path.join(dirpath, f) for f in files if f.endswith((".rst", ".inc"))]
    return sorted(found)


# A figure with a unit of time or size in README.md or the course is a
# setting or a fact of the hardware, named here with where it comes from,
# or a measurement, which lives only in a file a command writes
# (docs/timings.inc, docs/platforms.inc): a new figure fails make check
# until it is one or the other.
FIGURE = re.compile(r"\b\d[\d.,]*(?:[–-]\d[\d.,]*)? ?(?:ms|s|MB|GB|GiB|MiB|KiB|KB|minutes?|seconds?|hours?)\b")
SETTINGS = {
    "10 s": "a silent boot's fallback from KVM to TCG (harness/runner.py KVM_START)",
    "4 s": "the guest's soft-lockup panic (harness/vm.py, watchdog_thresh=2)",
    "15 s": "the guest's hung-task panic (kernel.config)",
    "5 s": "kmemleak's minimum object age (mm/kmemleak.c)",
    "5 seconds": "kmemleak's minimum object age (mm/kmemleak.c)",
    "100 ms": "edu's DMA timer (QEMU hw/misc/edu.c)",
    "4 KiB": "KUnit's log per case (kernel/patches) and edu's buffer, the x86 page",
    "1 KiB": "the seed's buffer size",
    "8 MB": "the dma VM's swiotlb pool (swiotlb=4096 slabs of 2 KiB)",
    "256 MB": "edu's 28 address lines, and the guest's memory (harness/vm.py)",
    "256 KiB": "the grader's largest student file (grader/grade.py)",
    "60 s": "a build's and a VM run's limit on one CPU, checkpatch's limit",
    "120 s": "the limits at half a CPU, and a lab's boots on one CPU",
    "240 s": "a lab's boots at half a CPU",
    "2 GiB": "a sandboxed build's memory per process (harness/sandbox.py)",
    "64 KiB": "a sandboxed build's messages (harness/sandbox.py)",
    "16 MB": "a VM run's kernel log (harness/vm.py)",
    "1 MiB": "the object check's code limit (harness/objcheck.py)",
    "768 MB": "Gradescope's default container memory",
    "10 minutes": "Gradescope's default time limit",
    "20 minutes": "the time limit the grading page suggests",
    "17 minutes": "four labs' 240 s and their builds, the grading page's sum",
}


def unsourced_figures():
    """Figures with a unit in README.md and the course that are neither a
    known setting nor in a file a command writes."""
    wrong = []
    for path in stated_files():
        if path.endswith(("timings.inc", "platforms.inc")):
            continue
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                for m in FIGURE.finditer(line):
                    if m[0] not in SETTINGS:
                        wrong.append(f"{os.path.relpath(path, KIT)}:{n}: '{m[0]}' is a figure with "
                                     "no producer: a measurement belongs in docs/timings.inc or "
                                     "docs/platforms.inc, a setting in doccheck.SETTINGS")
    return wrong


def stated_counts():
    """What README.md and the course say that the code contradicts: a
    lab's or suite's number of cases, the line a quoted failure points
    to, and an example run's totals against its lab's cases."""
    labs = {lab: labmod.expected_cases(lab) for lab in labmod.labs()}
    count = {lab: sum(len(c) for _s, c in suites) for lab, suites in labs.items()}
    count.update({suite: len(c) for suites in labs.values() for suite, c in suites})
    lab_of = {suite: lab for lab, suites in labs.items() for suite, _c in suites}
    wrong = []
    for path in stated_files():
        with open(path, encoding="utf-8") as f:
            text = f.read()
        where = os.path.relpath(path, KIT)
        for m in CASES_STATED.finditer(text):
            if m[1] in count and int(m[2]) != count[m[1]]:
                wrong.append(f"{where}: '{m[0]}', but {m[1]} has {count[m[1]]}")
        for m in FAILED_AT.finditer(text):
            test = os.path.join(KIT, m[1])
            lines = open(test).read().splitlines() if os.path.exists(test) else []
            n = int(m[2])
            if not (0 < n <= len(lines) and "KUNIT_" in lines[n - 1]):
                wrong.append(f"{where}: '{m[0]}' is not a check in {m[1]}")
        # An example run: its totals add up to its lab's cases.
        for block in re.split(r"\n(?=```|\S)", text):
            suites = SUITE_HEADER.findall(block)
            totals = TOTALS.search(block)
            named = re.search(r"make test LAB=(\w+)", block)
            lab = lab_of.get(suites[0]) if suites else named[1] if named and named[1] in labs else None
            if lab and totals:
                said = sum(int(t) for t in totals.groups() if t)
                if said != count[lab]:
                    wrong.append(f"{where}: an example run of {lab} totals {said} cases "
                                 f"('{totals[0].strip()}'), but {lab} has {count[lab]}")
    return wrong + unsourced_figures()


def checks():
    """Each check as (name, passed, detail)."""
    with tempfile.TemporaryDirectory(prefix="kdkit-docs-") as root:
        return _checks(root)


def diagrams_drawn(site):
    """What is wrong with the site's diagrams: each docs/diagrams/*.dot must
    be included by a page, and each SVG graphviz drew must be a picture."""
    problems = []
    sources = glob.glob(os.path.join(KIT, "docs", "diagrams", "*.dot"))
    pages = "".join(open(p, encoding="utf-8").read()
                    for p in glob.glob(os.path.join(KIT, "docs", "**", "*.rst"), recursive=True))
    problems += [f"{os.path.basename(d)}: no page includes it" for d in sources
                 if f"diagrams/{os.path.basename(d)}" not in pages]
    svgs = glob.glob(os.path.join(site, "_images", "graphviz-*.svg"))
    if len(svgs) < len(sources):
        problems.append(f"{len(svgs)} SVG drawn for {len(sources)} diagrams")
    for svg in svgs:
        text = open(svg, encoding="utf-8").read()
        if "<svg" not in text or "<g id=\"graph0\"" not in text:
            problems.append(f"{os.path.basename(svg)}: not a graphviz drawing")
    return problems


def _checks(root):
    results = []
    builds = {}
    for audience in docs.AUDIENCES:
        out = os.path.join(root, audience)
        proc = docs.build(audience, out)
        builds[audience] = out
        results.append((f"the {audience} course builds with sphinx -W", proc.returncode == 0,
                        proc.stdout + proc.stderr))
    student, instructor = builds["student"], builds["instructor"]
    shown = {p: page_text(p) for p in glob.glob(os.path.join(student, "**", "*.html"),
                                                  recursive=True)}
    with open(os.path.join(student, "searchindex.js"), encoding="utf-8") as f:
        shown["searchindex.js"] = squeeze(f.read())

    drawn = diagrams_drawn(student)
    results.append(("every diagram in docs/diagrams is drawn as SVG on a page",
                    not drawn, "\n".join(drawn)))

    for lab in labmod.labs():
        ok, why = exercises_match_todos(lab)
        results.append((f"docs/labs/{lab}.rst has one exercise per TODO", ok, why))

        page = page_text(os.path.join(student, "labs", f"{lab}.html"))
        missing = [i.name for i in rubric.load(lab) if i.name not in page]
        results.append((f"every {lab} rubric item is on its page", not missing,
                        f"not on labs/{lab}.html: {missing}"))

        secret = solution_only_lines(lab)
        leaks = sorted({f"{os.path.relpath(p, student)}: {l}" for l in secret
                        for p, text in shown.items() if l in text})
        results.append((f"the student course shows none of {lab}'s {len(secret)} solution lines",
                        not leaks, "\n".join(leaks[:10])))
        teach = page_text(os.path.join(instructor, "labs", f"{lab}.html"))
        absent = [l for l in secret if l not in teach]
        results.append((f"the instructor course shows all of {lab}'s solution lines", not absent,
                        "\n".join(absent[:10])))

    reference = page_text(os.path.join(student, "reference.html"))
    make, env = documented_settings()
    missing = [v for v in make + env if v not in reference]
    results.append(("the reference names every make variable and KDKIT_ setting", not missing,
                    f"not in docs/reference.rst: {missing}"))

    wrong = stated_counts()
    results.append(("README.md and the course state the counts the code has", not wrong,
                    "\n".join(wrong)))

    for chapter in sorted(glob.glob(os.path.join(KIT, "docs", "concepts", "*.rst"))):
        with open(chapter, encoding="utf-8") as f:
            ok = ":doc:`../labs/" in f.read()
        results.append((f"{os.path.relpath(chapter, KIT)} points to a lab", ok,
                        "add a :doc: link to the lab that practises it"))
    return results


def main():
    failed = 0
    for name, ok, detail in checks():
        print(f"[{'PASSED' if ok else 'FAILED'}] {name}")
        if not ok:
            failed += 1
            print("    " + detail.rstrip().replace("\n", "\n    "))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
