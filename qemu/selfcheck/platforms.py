"""make distro-check's record: docs/platforms.inc, the only home of the
platforms the kit was tried on and what it did there.

  python3 -m selfcheck.platforms DISTRO CHECK RESULT SECONDS VERSIONS [AT]

distro-check.sh calls this at the end of every run, passed or not: the row
for DISTRO (bookworm or trixie) and CHECK is replaced by this run's, with
the date, the commit (AT: the one the run started at, else HEAD) and the
machine; the other rows stay as their own runs wrote them. VERSIONS is
what PROBE printed where the run ran.
"""
import datetime
import os
import re
import sys

from harness import lab as labmod
from selfcheck.timings import commit, machine

KIT = labmod.KIT
OUT = os.path.join(KIT, "docs", "platforms.inc")
HEAD = ".. Written by make distro-check (qemu/selfcheck/platforms.py); do not edit."
COLUMNS = ("platform", "check", "result", "time", "Python, QEMU, gcc", "when, where")
RELEASES = {"bookworm": "Debian 12 (bookworm)", "trixie": "Debian 13 (trixie)"}
# Run where the kit ran (a chroot, an image); versions() reads its output.
PROBE = "python3 -V; qemu-system-x86_64 --version | head -n 1; gcc -dumpfullversion"


def versions(text):
    """"Python 3.11.2, QEMU 7.2.22, gcc 12.2.0" from what PROBE printed."""
    found = [f"{name} {m[1]}" for name, pattern in (("Python", r"Python (\d[\d.]*)"),
                                                    ("QEMU", r"QEMU emulator version (\d[\d.]*)"),
                                                    ("gcc", r"^(\d+\.\d[\d.]*)$"))
             if (m := re.search(pattern, text, re.M))]
    return ", ".join(found) or "not reached"


def _cell(text):
    # One line per cell: the list-table's rows are read back by this file.
    return " ".join(str(text).split())


def read(path=OUT):
    """{(platform, check): row}, the rows the file holds."""
    rows, row = {}, None
    if not os.path.exists(path):
        return rows
    for line in open(path):
        if line.startswith("   * - "):
            row = [line[len("   * - "):].rstrip("\n")]
        elif line.startswith("     - ") and row is not None:
            row.append(line[len("     - "):].rstrip("\n"))
            if len(row) == len(COLUMNS):
                if tuple(row) != COLUMNS:
                    rows[(row[0], row[1])] = row
                row = None
    return rows


def render(rows):
    lines = [HEAD, "", ".. list-table::", "   :header-rows: 1",
             "   :widths: 14 16 34 8 14 14", ""]
    for row in [list(COLUMNS)] + [rows[k] for k in sorted(rows)]:
        lines.append("   * - " + row[0])
        lines += ["     - " + cell for cell in row[1:]]
    return "\n".join(lines) + "\n"


def record(platform, check, result, seconds, versions, path=OUT, at=None):
    rows = read(path)
    when = (f"{datetime.date.today().isoformat()} at {at or commit()}, "
            f"{machine().replace(' at the start', ' at the end')}")
    rows[(_cell(platform), _cell(check))] = [_cell(platform), _cell(check), _cell(result),
                                             f"{int(seconds)} s", _cell(versions), _cell(when)]
    with open(path, "w") as f:
        f.write(render(rows))


def main(argv):
    if len(argv) not in (5, 6):
        print("usage: " + __doc__.strip().splitlines()[3].strip(), file=sys.stderr)
        return 2
    distro, check, result, seconds, probed = argv[:5]
    platform = RELEASES.get(distro, distro)
    record(platform, check, result, float(seconds), versions(probed),
           at=argv[5] if argv[5:] else None)
    print(f"platforms: recorded {platform}, {check} in {os.path.relpath(OUT, KIT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
