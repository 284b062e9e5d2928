"""Write compile_commands.json for the labs, so that clangd (VS Code, vim,
Emacs) resolves the kernel's headers and the kit's in a student's files.

Each lab's skeleton, generated from solutions/, is built once against the
fast kernel (the flags do not depend on what the student wrote, and a
skeleton always builds), and kbuild's record of each compile
(.<file>.o.cmd) becomes an entry for labs/<lab>/<file>.c. The tests' files
get entries too, as the kit builds them.
"""
import json
import os
import re
import sys
import tempfile

from course import skelgen
from harness import kbuild
from harness import lab as labmod
from kernel import source as kernel_source

CMD = re.compile(r"^cmd_(\S+\.o) := (.*)$")


def entries(lab, kdir):
    """compile_commands entries for one lab's student files and suites."""
    with tempfile.TemporaryDirectory(prefix="kdkit-cc-") as tmp:
        src = os.path.join(tmp, "src")
        os.makedirs(src)
        for f in labmod.student_files(lab):
            with open(os.path.join(labmod.KIT, "solutions", lab, f)) as fin, \
                    open(os.path.join(src, f), "w") as fout:
                fout.write(skelgen.strip(fin.read()))
        bdir = os.path.join(tmp, "build")
        _built, _warnings, origin = kbuild.build(lab, src, kdir, bdir)
        real = {b: (os.path.join(labmod.KIT, "labs", lab, os.path.basename(b))
                    if r.startswith(src) else r) for b, r in origin.items()}
        out = []
        for name in sorted(os.listdir(bdir)):
            if not (name.startswith(".") and name.endswith(".o.cmd")):
                continue
            with open(os.path.join(bdir, name)) as f:
                m = CMD.match(f.readline().rstrip("\n"))
            source = os.path.join(bdir, name[1:-len(".o.cmd")] + ".c")
            if not m or source not in real:
                continue
            # The compile alone (kbuild runs objtool after it), with the
            # student's and the kit's files where they really are.
            command = m[2].split(" ; ")[0].strip()
            for b, r in sorted(real.items(), key=lambda kv: -len(kv[0])):
                command = command.replace(b, r)
            command = command.replace(f" {os.path.basename(source)}", f" {real[source]}")
            command = command.replace(bdir + os.sep, "")
            out.append({"directory": kdir, "file": real[source], "command": command})
        return out


def main(argv):
    out = argv[0] if argv else os.path.join(labmod.KIT, "compile_commands.json")
    kdir = kernel_source.kernel_dir("fast")
    found = [e for lab in labmod.labs() for e in entries(lab, kdir)]
    with open(out, "w") as f:
        json.dump(found, f, indent=1)
    print(f"kdkit: {os.path.relpath(out)}: {len(found)} files "
          f"({', '.join(labmod.labs())}); open labs/ in an editor that reads it (clangd)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
