"""make gradescope: the Gradescope autograder bundle, gradescope/autograder.zip.

It holds Gradescope's two scripts (qemu/grader/gradescope/) and the kit
itself under source/kdkit: the files git tracks that grading needs, less
every answer (see bundled()). setup.sh installs
the packages and builds the kernel of the bundle's flavour when Gradescope
builds the image; run_autograder grades /autograder/submission into
results.json on that kernel. With --private, the instructor's private
suites for those labs go in as source/kdkit/private/<lab>/, and
run_autograder grades with them. With --pack, the built kernel goes in as
kernel-pack.tar.gz (qemu/kernel/pack.py), and setup.sh compiles no kernel
when the image's gcc is the one that built it.

  python3 -m grader.bundle [--labs vser,fsled] [--private DIR] [--strict]
                           [--pack] [--out gradescope/autograder.zip]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import zipfile

from harness import lab as labmod
from kernel import pack as kernel_pack
from kernel import source as kernel_source

HERE = os.path.dirname(os.path.abspath(__file__))
# The folders of qemu/ that grading never runs.
NOT_GRADING = ("tests", "selfcheck", "course")


def _add(z, path, name, mode=None):
    info = zipfile.ZipInfo.from_file(path, name)
    if mode is not None:
        info.external_attr = (0o100000 | mode) << 16
    with open(path, "rb") as fh:
        z.writestr(info, fh.read(), zipfile.ZIP_DEFLATED)


def bundled(path, labs):
    """Whether a tracked file goes into the bundle: no answers (solutions,
    alternatives, mutants, the harness's own tests and fixtures, the docs
    with their instructor pages), none of the kit's parts that grading
    does not run (its self-checks, the course tooling), and only the labs
    asked for."""
    parts = path.split("/")
    if parts[0] in ("solutions", "docs") or (parts[0] == "qemu" and parts[1] in NOT_GRADING):
        return False
    if parts[0] in ("labs", "kunit"):
        return len(parts) > 2 and parts[1] in labs and parts[2] not in ("alternatives", "mutants")
    return True


def build(labs, out, private=None, flavour="fast", pack=False):
    files = subprocess.run(["git", "ls-files", "-z"], cwd=labmod.KIT, capture_output=True,
                           text=True, check=True).stdout.split("\0")
    files = [f for f in files if f and bundled(f, labs)]
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for script in ("setup.sh", "run_autograder"):
            info = zipfile.ZipInfo(script)
            info.external_attr = 0o755 << 16
            with open(os.path.join(HERE, "gradescope", script), "rb") as f:
                z.writestr(info, f.read(), zipfile.ZIP_DEFLATED)
        for f in filter(None, files):
            _add(z, os.path.join(labmod.KIT, f), f"kdkit/{f}")
        for lab in labs if private else ():
            d = os.path.join(private, lab)
            for f in sorted(os.listdir(d)) if os.path.isdir(d) else ():
                if f.endswith(("_test.c", "_user.c", ".toml")):
                    # For the grader (root) alone; the sandboxed build never
                    # sees the kit at all.
                    _add(z, os.path.join(d, f), f"kdkit/private/{lab}/{f}", mode=0o600)
        z.writestr("kdkit/.gradescope-labs", ",".join(labs) + "\n")
        z.writestr("kdkit/.gradescope-flavour", flavour + "\n")
        if pack:
            with tempfile.TemporaryDirectory() as tmp:
                kernel_pack.pack(flavour, os.path.join(tmp, "pack.tar.gz"))
                # Already compressed: stored as it is.
                z.write(os.path.join(tmp, "pack.tar.gz"), "kdkit/kernel-pack.tar.gz",
                        zipfile.ZIP_STORED)
    return out


def main(argv):
    p = argparse.ArgumentParser(prog="gradescope", description=__doc__.splitlines()[0])
    p.add_argument("--labs", default="")
    p.add_argument("--private")
    p.add_argument("--strict", action="store_true", help="grade on the strict kernel")
    p.add_argument("--pack", action="store_true", help="bundle the built kernel")
    p.add_argument("--out", default=os.path.join(labmod.KIT, "gradescope", "autograder.zip"))
    args = p.parse_args(argv)
    labs = [l for l in args.labs.split(",") if l] or labmod.labs()
    try:
        for l in labs:
            labmod.check_lab(l)
    except labmod.LabError as e:
        print(f"gradescope: {e}", file=sys.stderr)
        return 2
    if args.private and not os.path.isdir(args.private):
        print(f"gradescope: PRIVATE={args.private} is not a folder; give the folder that "
              "holds one subfolder per lab", file=sys.stderr)
        return 2
    flavour = kernel_source.flavour(args.strict)
    try:
        out = build(labs, args.out, args.private, flavour, args.pack)
    except kernel_source.SourceError as e:
        print(f"gradescope: {e}", file=sys.stderr)
        return 2
    print(f"gradescope: {out} ({os.path.getsize(out) >> 20} MB; labs: {', '.join(labs)}; "
          f"{flavour} kernel{', prebuilt' if args.pack else ''}"
          f"{'; private suites from ' + args.private if args.private else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
