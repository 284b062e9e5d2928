"""What the reference and alternative solutions import: the lists of
usual calls, beside which the object check (harness/objcheck.py) shows
the instructor what else a student's driver calls.

  python3 -m selfcheck.imports --update   rewrite every kunit/<lab>/imports.txt
"""
import os
import sys
import tempfile

from harness import kbuild, objcheck
from harness import lab as labmod
from kernel import source as kernel_source


def reference_imports(lab):
    """What the reference and the alternatives import, on both kernels, as
    the sandbox compiles them (without the check that uses the result)."""
    found = set()
    dirs = [os.path.join(labmod.KIT, "solutions", lab)] + list(labmod.alternatives(lab).values())
    for flavour in ("fast", "strict"):
        for src in filter(os.path.isdir, dirs):
            with tempfile.TemporaryDirectory(prefix="kdkit-build-") as d:
                try:
                    kbuild.build_sandboxed(lab, src, kernel_source.kernel_dir(flavour), d)
                except kbuild.ObjectRefused:
                    pass        # the objects are made before they are checked
                for f in labmod.student_files(lab):
                    if f.endswith(".c"):
                        obj = os.path.join(d, "sandbox", "student", f[:-2] + ".o")
                        found |= set(objcheck.own_calls(obj))
    return found


def update():
    for lab in labmod.labs():
        path = labmod.imports_file(lab)
        with open(path, "w") as f:
            f.write(f"# What the {lab} reference and alternative solutions import, on both\n"
                    "# kernels: written by qemu/selfcheck/imports.py --update, checked by make check.\n"
                    "# Calls in neither this nor common/imports.txt are shown to the instructor.\n")
            f.writelines(s + "\n" for s in sorted(reference_imports(lab)))
        print(f"imports: {os.path.relpath(path, labmod.KIT)}")


def main(argv):
    if argv != ["--update"]:
        print(__doc__.split("\n\n")[-1], file=sys.stderr)
        return 2
    update()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
