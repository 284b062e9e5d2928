"""make distro-check's record: docs/platforms.inc, the only home of the
platforms the kit was tried on and what it did there.

  python3 -m selfcheck.platforms PLATFORM CHECK RESULT SECONDS VERSIONS [AT]

distro-check.sh calls this at the end of every run, passed or not: the row
for PLATFORM and CHECK is replaced by this run's, with the date, the commit
(AT: the one the run started at, else HEAD) and the machine; the other
rows stay as their own runs wrote them.
"""
import datetime
import os
import sys

from harness import lab as labmod
from selfcheck.timings import commit, machine

KIT = labmod.KIT
OUT = os.path.join(KIT, "docs", "platforms.inc")
HEAD = ".. Written by make distro-check (qemu/selfcheck/platforms.py); do not edit."
COLUMNS = ("platform", "check", "result", "time", "Python, QEMU, gcc", "when, where")


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
    platform, check, result, seconds, versions = argv[:5]
    record(platform, check, result, float(seconds), versions, at=argv[5] if argv[5:] else None)
    print(f"platforms: recorded {platform}, {check} in {os.path.relpath(OUT, KIT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
