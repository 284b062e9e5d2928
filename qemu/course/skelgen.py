"""Generate the student skeletons in labs/ from the solutions in solutions/.

A solution marks the code a student writes with paired comment lines:

    /* TODO 3: greet whom in the kernel log */     <- kept: the numbered hint
    ...solution lines...                           <- removed
    /* skel: return 0; */                          <- becomes "return 0;"
    /* END TODO 3 */                               <- removed

Markers pair by number and do not nest. Files without markers are copied.
Usage: python3 -m course.skelgen SOLUTIONS LABS [--check]
"""
import os
import re
import sys

BEGIN = re.compile(r"^\s*/\* TODO (\d+): .+\*/\s*$")
END = re.compile(r"^\s*/\* END TODO (\d+) \*/\s*$")
STUB = re.compile(r"^(\s*)/\* skel: (.*) \*/\s*$")


class MarkerError(Exception):
    pass


def strip(text, name="<text>"):
    """Return the skeleton of one source file's text."""
    out, open_todo = [], None
    for lineno, line in enumerate(text.splitlines(keepends=True), 1):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if open_todo:
                raise MarkerError(f"{name}:{lineno}: TODO {begin[1]} opens inside TODO {open_todo}")
            open_todo = begin[1]
            out.append(line)
        elif end:
            if end[1] != open_todo:
                raise MarkerError(f"{name}:{lineno}: END TODO {end[1]} closes no open TODO {end[1]}")
            open_todo = None
        elif open_todo:
            stub = STUB.match(line)
            if stub:
                out.append(f"{stub[1]}{stub[2]}\n")
        else:
            out.append(line)
    if open_todo:
        raise MarkerError(f"{name}: TODO {open_todo} is never closed")
    return "".join(out)


def todo_numbers(text):
    """The TODO numbers a skeleton asks the student to do, in order."""
    return [m[1] for m in map(BEGIN.match, text.splitlines()) if m]


def generate(solutions, labs):
    """Map each labs/ path to the text the generator makes for it."""
    result = {}
    for root, _dirs, files in os.walk(solutions):
        for f in files:
            src = os.path.join(root, f)
            rel = os.path.relpath(src, solutions)
            with open(src, encoding="utf-8") as fh:
                result[os.path.join(labs, rel)] = strip(fh.read(), src)
    return result


def main(argv):
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    if len(args) != 2:
        print("usage: python3 -m course.skelgen SOLUTIONS LABS [--check]", file=sys.stderr)
        return 2
    solutions, labs = args
    try:
        wanted = generate(solutions, labs)
    except MarkerError as e:
        print(f"skelgen: {e}", file=sys.stderr)
        return 1
    present = {os.path.join(r, f) for r, _d, fs in os.walk(labs) for f in fs}
    stale = sorted(p for p, text in wanted.items() if not os.path.isfile(p) or open(p, encoding="utf-8").read() != text)
    extra = sorted(present - set(wanted))
    if check:
        for p in stale:
            print(f"skelgen: {p} differs from what solutions/ generates; run 'make skels'")
        for p in extra:
            print(f"skelgen: {p} has no source in solutions/; remove it or add one")
        return 1 if stale or extra else 0
    for p in stale:
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w", encoding="utf-8") as fh:
            fh.write(wanted[p])
        print(f"skelgen: wrote {p}")
    for p in extra:
        os.remove(p)
        print(f"skelgen: removed {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
