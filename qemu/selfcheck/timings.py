"""make timings: measure, and write docs/timings.inc, the only place the
course and the README take a timing from.

  python3 -m selfcheck.timings [--runs N]

For each lab: `make bench LAB=<lab> SRC=solutions` N times (an edit to the
student's file, then the whole make test, fast kernel), and one
`make test STRICT=1 SRC=solutions` after an untimed one. The file says
when, at which commit, on what machine and under what load the figures
were taken.
"""
import argparse
import datetime
import os
import re
import subprocess
import sys
import time

from harness import lab as labmod

KIT = labmod.KIT
OUT = os.path.join(KIT, "docs", "timings.inc")
BENCH = re.compile(r"edit-to-result ([\d.]+) s = build ([\d.]+) s \+ \S+(?: or restore)? ([\d.]+) s "
                   r"\+ tests ([\d.]+) s")


def _kdkit(*args):
    proc = subprocess.run([sys.executable, os.path.join(KIT, "qemu", "kdkit.py"), *args],
                          cwd=KIT, capture_output=True, text=True)
    return proc.returncode, proc.stdout


def bench(lab, runs):
    """[(edit-to-result, build, restore and tests)] of runs benches."""
    got = []
    for _ in range(runs):
        code, out = _kdkit("bench", lab, "--src", "solutions")
        m = BENCH.search(out)
        if code != 0 or not m:
            raise SystemExit(f"timings: make bench LAB={lab} SRC=solutions failed:\n{out[-2000:]}")
        total, build, start, tests = map(float, m.groups())
        got.append((total, build, start + tests))
    return got


def strict_test(lab):
    # Warm: the first run after a change builds the kit's objects and may
    # save the VM again, which is not what a student's next run costs.
    _kdkit("test", lab, "--src", "solutions", "--strict")
    t0 = time.monotonic()
    code, out = _kdkit("test", lab, "--src", "solutions", "--strict")
    if code != 0:
        raise SystemExit(f"timings: make test LAB={lab} STRICT=1 SRC=solutions failed:\n{out[-2000:]}")
    return time.monotonic() - t0


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "unknown CPU")
    load = open("/proc/loadavg").read().split()[0]
    return f"{os.cpu_count()} CPUs ({cpu}), load average {load} at the start"


def commit():
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=KIT, capture_output=True,
                          text=True).stdout.strip() or "no git"
    # The files the measurements are written to are not what was measured.
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                            ":!docs/timings.inc", ":!docs/platforms.inc"], cwd=KIT,
                           capture_output=True, text=True).stdout.strip()
    return head + (" with local changes" if dirty else "")


def span(values, unit="s"):
    lo, hi = min(values), max(values)
    return f"{lo:.2f} {unit}" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}--{hi:.2f} {unit}"


def render(rows, strict, when, at, where, runs):
    lines = [f".. Written by make timings (qemu/selfcheck/timings.py) on {when}; do not edit.", "",
             f"``make bench LAB=<lab> SRC=solutions``: an edit to the student's file, then the "
             f"whole ``make test``; {runs} runs each, fast kernel, saved VMs restored. Measured "
             f"by ``make timings`` on {when} at {at}, on {where}:", "",
             ".. list-table::", "   :header-rows: 1", "   :widths: 40 20 20 20", "",
             "   * - lab", "     - edit-to-result", "     - build", "     - restore and tests"]
    for lab, cases, got in rows:
        lines += [f"   * - {lab} ({cases} cases)", f"     - {span([g[0] for g in got])}",
                  f"     - {span([g[1] for g in got])}", f"     - {span([g[2] for g in got])}"]
    lines += ["", "``make test STRICT=1 SRC=solutions`` (KASAN and lockdep), once each after an "
              "untimed run: "
              + ", ".join(f"{lab} {secs:.1f} s" for lab, secs in strict) + "."]
    return "\n".join(lines) + "\n"


def main(argv):
    p = argparse.ArgumentParser(prog="timings", description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    when = datetime.date.today().isoformat()
    at, where = commit(), machine()
    rows, strict = [], []
    for lab in labmod.labs():
        cases = labmod.case_count(lab)
        rows.append((lab, cases, bench(lab, args.runs)))
        strict.append((lab, strict_test(lab)))
    with open(OUT, "w") as f:
        f.write(render(rows, strict, when, at, where, args.runs))
    print(f"timings: wrote {os.path.relpath(OUT, KIT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
