"""A built kit kernel as one file, so that a grading image boots it and
builds modules against it without compiling a kernel.

  python3 -m kernel.pack pack FLAVOUR OUT.tar.gz   the built kernel of FLAVOUR
  python3 -m kernel.pack unpack PACK.tar.gz DIR    lay it out as a cache in
                                                   DIR; print the source
                                                   folder, which KERNEL_SRC
                                                   then names

A pack holds what `make M=` and a boot need: from the build folder, the
configuration, the generated headers, the host tools (modpost, objtool,
gen_init_cpio), Module.symvers and bzImage; from the source, the
Makefiles, Kconfig and Kbuild files, scripts/ and the headers. Objects
and vmlinux stay behind. Modules must be built by the compiler that built
the kernel: unpack refuses a pack from another gcc.
"""
import os
import subprocess
import sys
import tarfile

from kernel import source as kernel_source

SKIP_NAMES = ("vmlinux", "vmlinux.o", "vmlinux.a", "built-in.a", "modules.builtin.modinfo")


def _wanted_build(rel):
    name = os.path.basename(rel)
    if name in SKIP_NAMES or name.startswith((".tmp_", ".")) and name.endswith(".cmd"):
        return False
    if name.endswith((".o", ".a", ".cmd", ".lz4", ".bin")) or rel.startswith("arch/x86/boot/compressed/"):
        return False
    return name != "source"


def _wanted_source(rel):
    top = rel.split("/")[0]
    name = os.path.basename(rel)
    if top in ("include", "scripts") or rel.startswith("arch/x86/include/"):
        return True
    return name.startswith(("Makefile", "Kconfig", "Kbuild")) or name == kernel_source.ID_FILE


def _add_tree(tar, root, arcroot, wanted):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for f in filenames:
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, root)
            if wanted(rel):
                tar.add(path, f"{arcroot}/{rel}", recursive=False)


def pack(flavour, out):
    build = kernel_source.kernel_dir(flavour)
    src = kernel_source.paths(flavour)[0]
    with tarfile.open(out, "w:gz", compresslevel=6) as tar:
        _add_tree(tar, src, f"src/{os.path.basename(src)}", _wanted_source)
        _add_tree(tar, build, f"kernel/{os.path.basename(build)}", _wanted_build)
    return out


def compiler_of(build):
    with open(os.path.join(build, ".config")) as f:
        for line in f:
            if line.startswith("CONFIG_CC_VERSION_TEXT="):
                return line.split("=", 1)[1].strip().strip('"')
    return ""


def unpack(pack_path, dest):
    """Lay the pack out as a kit cache in dest; return its source folder."""
    with tarfile.open(pack_path) as tar:
        names = tar.getnames()
        if any(n.startswith("/") or ".." in n.split("/") for n in names):
            raise kernel_source.SourceError(f"{pack_path} holds paths outside its folders")
        srcname = next(n.split("/")[1] for n in names if n.startswith("src/"))
        buildname = next(n.split("/")[1] for n in names if n.startswith("kernel/"))
        tar.extractall(dest)
    src = os.path.join(dest, "src", srcname)
    build = os.path.join(dest, "kernel", buildname)
    here = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    if here.strip() != compiler_of(build):
        raise kernel_source.SourceError(f"the pack's kernel was built by '{compiler_of(build)}', "
                                        f"this machine has '{here.strip()}'")
    # The build folder names its source by absolute path: point it here.
    with open(os.path.join(build, "Makefile"), "w") as f:
        f.write(f"# Written by kernel/pack.py: the kit kernel unpacked here\ninclude {src}/Makefile\n")
    link = os.path.join(build, "source")
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(src, link)
    open(kernel_source.built_marker(build), "a").close()
    return src


def main(argv):
    try:
        if argv[:1] == ["pack"] and len(argv) == 3:
            print(pack(argv[1], argv[2]))
        elif argv[:1] == ["unpack"] and len(argv) == 3:
            print(unpack(argv[1], argv[2]))
        else:
            print(__doc__.split("\n\n")[1], file=sys.stderr)
            return 2
    except kernel_source.SourceError as e:
        print(f"kernel-pack: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
