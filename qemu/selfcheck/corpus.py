"""The object check (harness/objcheck.py) on drivers no one here wrote:
mainline's char, misc, LED, GPIO and DMA drivers and the kernel's samples,
each built as a module of its own against the kit's fast kernel. A
refusal of one is right only for a capability a lab's driver never needs
(a call objcheck.DENIED names, port I/O, NOKPROBE_SYMBOL); any other
refusal (a section, a constructor) would fail correct drivers too.

  python3 -m selfcheck.corpus     build, check, print the counts; exit
                                  status 1 on a refusal of another kind
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

from harness import lab as labmod
from harness import machine, objcheck
from kernel import source as kernel_source

# Folders of the kernel's source whose .c files are drivers like the labs'.
FOLDERS = ("drivers/char", "drivers/misc", "drivers/leds", "drivers/gpio", "drivers/dma",
           "samples/kfifo", "samples/kobject", "samples/configfs", "samples/watchdog",
           "samples/kmemleak", "samples/trace_printk", "samples/kprobes", "samples/ftrace",
           "samples/hw_breakpoint")
# How a refusal for a capability reads (objcheck's own words).
# Defining what the kernel exports is reimplementing the kernel, which only
# the kernel's own files do (drivers/char/misc.c, built into the kit's).
CAPABILITIES = ["holds the port I/O instruction", "holds the privileged instruction", "NOKPROBE_SYMBOL()",
                "which the kernel or the kit defines"] + \
    [f"which {why}" for why, _names in objcheck.DENIED]


def _kbuild(tree, work):
    """Copy each folder's sources into work; return the objects asked for."""
    objs = []
    for folder in FOLDERS:
        os.makedirs(os.path.join(work, folder), exist_ok=True)
        for f in glob.glob(os.path.join(tree, folder, "*.[ch]")):
            shutil.copy(f, os.path.join(work, folder))
            if f.endswith(".c"):
                objs.append(os.path.join(folder, os.path.basename(f)[:-2] + ".o"))
    with open(os.path.join(work, "Kbuild"), "w") as f:
        f.write("".join(f"obj-m += {o}\n" for o in sorted(objs)))
    return sorted(objs)


def run():
    """{object: [refusal]} and the counts: (asked, built, unusual before)."""
    kdir = kernel_source.kernel_dir("fast")
    tree = os.path.realpath(os.path.join(kdir, "source"))
    usual = set().union(*(labmod.usual_imports(lab) for lab in labmod.labs()))
    with tempfile.TemporaryDirectory(prefix="kdkit-corpus-") as work:
        objs = _kbuild(tree, work)
        # -k: many need options the kit's small kernel lacks; those do not build.
        subprocess.run(["make", "-k", f"-j{machine.jobs() + 1}", "-C", kdir, f"M={work}",
                        "KBUILD_MODPOST_WARN=1"] + objs,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        built = [o for o in objs if os.path.isfile(os.path.join(work, o))]
        refused, before = {}, 0
        # A driver that could be built in never defines what the kernel exports.
        exports = objcheck.kernel_exports(kdir)
        for o in built:
            path = os.path.join(work, o)
            problems = objcheck.check("corpus", [path], taken_names=exports)
            if problems:
                refused[o] = problems
            # The allow-list this check replaced refused any call outside these lists.
            before += bool(objcheck.unusual([path], usual))
    return refused, (len(objs), len(built), before)


def main():
    refused, (asked, built, before) = run()
    wrong = 0
    for o, problems in sorted(refused.items()):
        print(f"corpus: {o}: refused")
        for p in problems:
            kind = next((c for c in CAPABILITIES if c in p), None)
            wrong += kind is None
            print(f"    {p}" + ("" if kind else "   <- NOT A CAPABILITY"))
    print(f"corpus: {built} of {asked} mainline files built against the kit kernel; the check "
          f"refuses {len(refused)}, with {wrong} refusal(s) for what is not a capability a lab "
          f"never needs; the allow-list it replaced refused {before}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
