"""make docs: build the course with Sphinx, warnings as errors.

  python3 -m course.docs [--audience student|instructor] [--out DIR]

The student build (the default, docs/_build/html) leaves out every
``.. only:: instructor`` block: the reference solutions and the mutants.
The instructor build (docs/_build/instructor) has them.
"""
import argparse
import os
import subprocess
import sys

from harness.lab import KIT

AUDIENCES = {"student": "html", "instructor": "instructor"}


def build(audience, out):
    """Run sphinx-build; returns the CompletedProcess (output captured)."""
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
           "-d", os.path.join(out, ".doctrees"), "-t", audience,
           os.path.join(KIT, "docs"), out]
    return subprocess.run(cmd, capture_output=True, text=True)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--audience", default="student")
    p.add_argument("--out")
    args = p.parse_args(argv)
    if args.audience not in AUDIENCES:
        print(f"docs: unknown AUDIENCE '{args.audience}'; use AUDIENCE=student (the default) "
              "or AUDIENCE=instructor", file=sys.stderr)
        return 2
    out = args.out or os.path.join(KIT, "docs", "_build", AUDIENCES[args.audience])
    proc = build(args.audience, out)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    if proc.returncode:
        print("docs: the build failed on the warnings above (warnings are errors); fix the "
              "named .rst line and run make docs again", file=sys.stderr)
        return 1
    print(f"docs: {os.path.relpath(os.path.join(out, 'index.html'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
