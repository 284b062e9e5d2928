"""What a lab is made of, and how its modules are built.

A lab <id> has its reference files in solutions/<id>/ (the student edits the
same names), its KUnit suites in kunit/<id>/*_test.c (one suite a file), and
shares headers in common/. The build links the student's files and every
suite into one module, <id>_kunit.ko, next to the kit's kdkit.ko.
"""
import contextlib
import fcntl
import glob
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from typing import NamedTuple

import kernel_source
import objcheck
import sandbox

KIT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class LabError(Exception):
    """Bad input from the user: the message says what to do next."""


class ObjectRefused(LabError):
    """The student's objects reach for what no driver needs
    (qemu/objcheck.py); a line a violation."""


def labs():
    """Every lab id, in course order: the skeletons in labs/, which a
    grading bundle has and its solutions/ does not."""
    order = ["hello", "vser", "fsled", "dma"]
    have = set(os.listdir(os.path.join(KIT, "labs")))
    return [l for l in order if l in have] + sorted(have - set(order))


def check_lab(lab):
    if not lab:
        raise LabError(f"say which lab, e.g. 'make test LAB=hello'; the labs are: {' '.join(labs())}")
    if lab not in labs():
        raise LabError(f"unknown lab '{lab}'; the labs are: {' '.join(labs())}")


def student_files(lab):
    """The files a student provides for a lab: the names in labs/<lab>/
    (make skels makes them from solutions/<lab>/, and make check says so)."""
    return sorted(os.listdir(os.path.join(KIT, "labs", lab)))


def private_dir(lab):
    """An instructor's extra suites for lab, kept out of the student
    distribution: $KDKIT_PRIVATE/<lab>/, with a rubric.toml of their own."""
    root = os.environ.get("KDKIT_PRIVATE")
    d = os.path.join(os.path.abspath(root), lab) if root else None
    return d if d and os.path.isdir(d) else None


def _test_sources(lab, suffix):
    dirs = [os.path.join(KIT, "kunit", lab)] + list(filter(None, [private_dir(lab)]))
    return [os.path.join(d, f) for d in dirs for f in sorted(os.listdir(d)) if f.endswith(suffix)]


def suite_files(lab):
    """KUnit suites, linked into the lab's test module."""
    return _test_sources(lab, "_test.c")


def user_files(lab):
    """Userspace suites (common/ktap_user.h), run in the VM as programs."""
    return _test_sources(lab, "_user.c")


CASE = re.compile(r"^\s*(?:KUNIT_CASE|UCASE)\((\w+)\)")
USER_SUITE = re.compile(r'^\s*return ktap_run\("(\w+)"')
SUITE_NAME = re.compile(r'^\s*\.name\s*=\s*"(\w+)"')


def expected_cases(lab):
    """[(suite, [case, ...])] in the order KUnit will run them.

    Read from the kit's own test sources, never from the run, so a case that
    does not report is noticed. Each file holds one suite, whose case list
    is written as KUNIT_CASE(name) lines.
    """
    plan = []
    for path in suite_files(lab) + user_files(lab):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        pattern = USER_SUITE if path.endswith("_user.c") else SUITE_NAME
        names = [m[1] for m in map(pattern.match, text.splitlines()) if m]
        cases = [m[1] for m in map(CASE.match, text.splitlines()) if m]
        if len(names) != 1 or not cases:
            raise LabError(f"{path}: a test file must hold one suite with KUNIT_CASE() lines")
        plan.append((names[0], cases))
    return plan


def resolve_src(lab, src):
    """The folder holding the student's files for this lab."""
    base = os.path.join(KIT, src) if src in ("labs", "solutions") else os.path.abspath(src)
    if not os.path.isdir(base):
        raise LabError(f"SRC={src} is not a folder; use labs, solutions or a folder with {lab}'s files")
    for d in (os.path.join(base, lab), base):
        if all(os.path.isfile(os.path.join(d, f)) for f in student_files(lab)):
            return d
    missing = [f for f in student_files(lab) if not os.path.isfile(os.path.join(base, lab, f))]
    raise LabError(f"SRC={src} has no {lab}/{missing[0]} (nor {missing[0]} at its top); "
                   f"lab {lab} needs: {' '.join(student_files(lab))}")


MUTANT = re.compile(r"^(\d+)-.+\.patch$")


def mutants(lab):
    """The lab's mutants, kunit/<lab>/mutants/N-what.patch (the solution
    with one defect each), as {N: path} in number order: 2 before 10."""
    d = os.path.join(KIT, "kunit", lab, "mutants")
    found = {int(m[1]): os.path.join(d, m[0])
             for m in map(MUTANT.match, os.listdir(d) if os.path.isdir(d) else []) if m}
    return dict(sorted(found.items()))


def patched_solution(lab, patch, dest):
    """Copy lab's solution files into dest and apply one defect to them:
    how the harness fixtures and the lab mutants are made. Raises LabError
    if the patch no longer applies."""
    for f in student_files(lab):
        shutil.copyfile(os.path.join(KIT, "solutions", lab, f), os.path.join(dest, f))
    with open(patch) as p:
        proc = subprocess.run(["patch", "-s", "-p1", "-d", dest], stdin=p,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise LabError(f"{patch} no longer applies to solutions/{lab}; update it\n{proc.stdout}")
    return dest


def _sync(src, dst):
    """Copy a file only if it changed, so that make rebuilds only what did."""
    if os.path.isfile(dst):
        with open(src, "rb") as a, open(dst, "rb") as b:
            if a.read() == b.read():
                return
    shutil.copyfile(src, dst)


def kdkit_sources():
    """The files of kdkit.ko, the harness's helper module."""
    d = os.path.join(KIT, "common")
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.startswith("kdkit_") and f.endswith(".c"))


class Board(NamedTuple):
    """What a lab's VM has beyond the kernel: the QEMU devices that
    common/board.c turns into platform devices, vCPUs, and the tools from
    common/ that its shell offers in /usr/bin."""
    devices: tuple = ()
    cpus: int = 1
    tools: tuple = ()
    cmdline: str = ""    # kernel arguments added for this lab
    icount: bool = False  # virtual time skips idle waits (edu's 100 ms DMA timer)
    memory: str = ""     # guest RAM, if not the flavour's default


BOARDS = {
    # Two vCPUs, so that two threads can run into the driver at once
    # (common/kdkit_interleave.c needs one CPU for each).
    "vser": Board(cpus=2),
    "fsled": Board(devices=("gpio",), cpus=2, tools=("ledctl",)),
    # Every streaming mapping bounces (an 8 MB swiotlb: quicker to set up and
    # to fill), so DMA mistakes show as wrong data; icount lets virtual time
    # skip edu's 100 ms DMA timer while the guest waits.
    # 256 MB on both kernels: edu drives 28 address lines, and the swiotlb
    # (placed high in RAM) must stay below 256 MB for its bounces to reach.
    "dma": Board(devices=("edu",), cmdline="swiotlb=4096,force", icount=True, memory="256M"),
}


def board(lab):
    return BOARDS.get(lab, Board())


# Debug information in the lab's modules, so that a kernel report names the
# student's lines (qemu/decode.py); the kernel itself is built without.
DEBUG_INFO = "-g"


class Built(NamedTuple):
    """A lab's build: modules in the order the VM loads them, and programs."""
    board: str         # board.ko, or None if the lab has no board
    module: str        # <lab>_kunit.ko for tests, <lab>.ko for a shell
    helper: str        # kdkit.ko, or None for a shell
    plain: str         # <lab>.ko for the userspace suites, or None
    progs: list        # the userspace suites
    tools: list        # installed in the VM's /usr/bin

    def files(self):
        """Everything that goes into the VM's /kdkit."""
        return [f for f in (self.board, self.module, self.helper, self.plain) if f] + self.progs


def kbuild_text(lab, student, suites, with_tests=True, with_board=False,
                include=os.path.join(KIT, "common")):
    lines = ["# Generated by kdkit for each run; edit qemu/lab.py instead.",
             f"ccflags-y := -I{include} {DEBUG_INFO}"]
    objs = [f[:-2] + ".o" for f in student if f.endswith(".c")]
    extra = " board.o" if with_board else ""
    if not with_tests:
        return "\n".join(lines + [f"obj-m := {lab}.o{extra}"] +
                         ([f"{lab}-y := {' '.join(objs)}"] if objs != [f"{lab}.o"] else [])) + "\n"
    tests = [os.path.basename(s)[:-2] + ".o" for s in suites]
    return "\n".join(lines + [
        f"obj-m := kdkit.o {lab}_kunit.o{extra}",
        f"kdkit-y := {' '.join(os.path.basename(k)[:-2] + '.o' for k in kdkit_sources())}",
        f"{lab}_kunit-y := {' '.join(objs + tests)}",
    ]) + "\n"


PROBES = os.path.join(KIT, "qemu", "probes.mk")


def _tool_version(tool):
    return subprocess.run([tool, "--version"], capture_output=True, text=True).stdout.split("\n")[0]


def kbuild_probes(kernel_dir):
    """make's arguments for a module build: the kernel Makefiles' flag
    probes answered from a table kept with the kernel build, per compiler
    and assembler (qemu/probes.mk)."""
    return [f"--eval=include {PROBES}", f"kdkit-probe-table={_probes(kernel_dir)}"]


_compiler_id = None


def _compilers():
    """gcc and as, as their versions say: what a cached build depends on."""
    global _compiler_id
    if _compiler_id is None:
        _compiler_id = hashlib.sha256("\0".join(map(_tool_version, ("gcc", "as"))).encode()
                                      ).hexdigest()[:12]
    return _compiler_id


def _probes(kernel_dir):
    return os.path.join(kernel_dir, "kdkit-probes", _compilers() + ".mk")


def warm_probes(kernel_dir):
    """Make the probe table once, outside the sandbox, which cannot keep
    it: a module build of nothing makes every probe."""
    table = _probes(kernel_dir)
    if os.path.isfile(table):
        return
    os.makedirs(os.path.dirname(table), exist_ok=True)
    record = f"{table}.{os.getpid()}.{threading.get_ident()}"
    with tempfile.TemporaryDirectory() as empty:
        with open(os.path.join(empty, "Kbuild"), "w") as f:
            f.write("obj-m :=\n")
        made = subprocess.run(["make", "-s", "-C", kernel_dir, f"M={empty}",
                               *kbuild_probes(kernel_dir), f"kdkit-probe-record={record}",
                               "modules"], capture_output=True)
    # A table that failed to fill would only cost time; none is kept.
    if made.returncode == 0 and os.path.isfile(record):
        os.replace(record, table)
    else:
        with contextlib.suppress(OSError):
            os.unlink(record)


def _cc_static(src, prog, what):
    """Build a kit program (never a student's) static, once per its source,
    common/'s headers and the compiler, and copy it to prog."""
    key = hashlib.sha256(_compilers().encode())
    for path in [src] + sorted(glob.glob(os.path.join(KIT, "common", "*.h"))):
        with open(path, "rb") as f:
            key.update(f.read())
    kept = os.path.join(kernel_source.CACHE, "programs", f"{os.path.basename(prog)}-{key.hexdigest()[:16]}")
    if not os.path.isfile(kept):
        os.makedirs(os.path.dirname(kept), exist_ok=True)
        tmp = f"{kept}.{os.getpid()}.{threading.get_ident()}"
        cc = subprocess.run(["gcc", "-static", "-O2", "-Wall", "-Wextra", f"-I{KIT}/common",
                             "-o", tmp, src], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
        if cc.returncode != 0:
            raise LabError(cc.stdout.rstrip() + f"\n{what} did not build")
        os.replace(tmp, kept)
    shutil.copy2(kept, prog)
    return prog


def build(lab, srcdir, kernel_dir, build_dir, with_tests=True, jobs=None, extra=()):
    """Build the lab's modules and programs into a Built, or raise LabError
    with the compiler's messages, paths pointing at the user's own files."""
    os.makedirs(build_dir, exist_ok=True)
    # Two runs of one source at once (a watcher's and one by hand) share
    # build_dir: two kbuilds in one folder break each other's files.
    with open(build_dir + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build(lab, srcdir, kernel_dir, build_dir, with_tests, jobs, extra)


def _build(lab, srcdir, kernel_dir, build_dir, with_tests, jobs, extra):
    student = student_files(lab)
    suites = suite_files(lab) if with_tests else []
    hw = board(lab)
    origin = {}
    for f in student:
        _sync(os.path.join(srcdir, f), os.path.join(build_dir, f))
        origin[os.path.join(build_dir, f)] = os.path.join(srcdir, f)
    kit = suites + (kdkit_sources() if with_tests else [])
    kit += [os.path.join(KIT, "common", "board.c")] if hw.devices else []
    for s in kit:
        dst = os.path.join(build_dir, os.path.basename(s))
        _sync(s, dst)
        origin[dst] = s
    kbuilds = {build_dir: kbuild_text(lab, student, suites, with_tests, bool(hw.devices))}
    with_user = with_tests and bool(user_files(lab))
    if with_user:
        plain = os.path.join(build_dir, "plain")
        os.makedirs(plain, exist_ok=True)
        for f in student:
            _sync(os.path.join(srcdir, f), os.path.join(plain, f))
            origin[os.path.join(plain, f)] = os.path.join(srcdir, f)
        kbuilds[plain] = kbuild_text(lab, student, [], with_tests=False)
    for d, text in kbuilds.items():
        kbuild = os.path.join(d, "Kbuild")
        if not os.path.isfile(kbuild) or open(kbuild).read() != text:
            with open(kbuild, "w") as f:
                f.write(text)
    # The module alone (plain/, for the userspace suites) builds alongside;
    # its messages would repeat the first build's, so they show only if the
    # first build worked.
    warm_probes(kernel_dir)
    procs = [subprocess.Popen(["make", "-s", "-C", kernel_dir, f"M={d}", *kbuild_probes(kernel_dir),
                              f"-j{jobs or os.cpu_count()}", *extra, "modules"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for d in kbuilds]
    results = [(p.communicate()[0], p.returncode) for p in procs]
    out = ""
    for text, code in results:
        out += _messages(text, origin)
        if code != 0:
            raise LabError(out.rstrip() + f"\n{lab}: build failed; fix the errors above and run the command again")
    at = lambda name: os.path.join(build_dir, name)
    progs = [_cc_static(src, at(os.path.basename(src)[:-2]), f"{lab}: the userspace tests")
             for src in (user_files(lab) if with_tests else [])]
    tools = [_cc_static(os.path.join(KIT, "common", t + ".c"), at(t), f"{lab}: the tool {t}")
             for t in (() if with_tests else hw.tools)]
    built = Built(board=at("board.ko") if hw.devices else None,
                  module=at(f"{lab}_kunit.ko" if with_tests else f"{lab}.ko"),
                  helper=at("kdkit.ko") if with_tests else None,
                  plain=at(f"plain/{lab}.ko") if with_user else None,
                  progs=progs, tools=tools)
    return built, out, origin


def _messages(text, origin):
    """The build's messages about the user's files; make's own "***" lines
    only repeat that the compiler failed."""
    return "".join(l for l in point_home(text, origin).splitlines(True)
                   if not re.match(r"^make(\[\d+\])?: \*\*\* ", l))


def point_home(text, origin):
    """Rewrite build-directory paths in text to the files they came from."""
    for built, real in sorted(origin.items(), key=lambda kv: -len(kv[0])):
        rel = os.path.relpath(real)
        text = text.replace(built, real if rel.startswith("..") else rel)
    return text


def build_sandboxed(lab, srcdir, kernel_dir, build_dir, jobs=None):
    """build() for grading, where the student's files are hostile: they are
    compiled alone in a sandbox (qemu/sandbox.py) that holds the kernel
    tree, the lab's shared headers and a copy of those files, under fixed
    names; the kit's suites are then linked with the objects they made."""
    sandbox.require()
    warm_probes(kernel_dir)
    student = student_files(lab)
    side = os.path.join(build_dir, "sandbox")
    shutil.rmtree(side, ignore_errors=True)
    os.makedirs(os.path.join(side, "include"))
    for h in glob.glob(os.path.join(KIT, "common", "*.h")):
        shutil.copyfile(h, os.path.join(side, "include", os.path.basename(h)))
    # The objects for the test module, and the module alone for the
    # userspace suites; the kernel's own build names them, not the student.
    objs = [f[:-2] + ".o" for f in student if f.endswith(".c")]
    with_user = bool(user_files(lab))
    parts = {"student": "\n".join(["# Generated by kdkit for each run; edit qemu/lab.py instead.",
                                    f"ccflags-y := -I/build/include {DEBUG_INFO}", f"obj-m := {lab}_kunit.o",
                                    f"{lab}_kunit-y := {' '.join(objs)}"]) + "\n"}
    if with_user:
        parts["plain"] = kbuild_text(lab, student, [], with_tests=False, include="/build/include")
    origin = {}
    for part, text in parts.items():
        os.makedirs(os.path.join(side, part))
        with open(os.path.join(side, part, "Kbuild"), "w") as f:
            f.write(text)
        for name in student:
            shutil.copyfile(os.path.join(srcdir, name), os.path.join(side, part, name))
            origin[f"/build/{part}/{name}"] = os.path.join(srcdir, name)
    # The kit's half: its suites, compiled once per lab and kernel and kept,
    # at a fixed path (/link) so that Kbuild finds them up to date in every
    # copy; only the link with the student's objects is new each time.
    suites = suite_files(lab)
    hw = board(lab)
    kit = suites + kdkit_sources() + ([os.path.join(KIT, "common", "board.c")] if hw.devices else [])
    kbuild = kbuild_text(lab, student, suites, True, bool(hw.devices))
    # The headers they include from common/ count by content and by time:
    # make rebuilds every kept object older than a header, and a rebuild in
    # a copy is never kept.
    headers = sorted(glob.glob(os.path.join(KIT, "common", "*.h")))
    key = hashlib.sha256("\0".join([kernel_dir, *kbuild_probes(kernel_dir), kbuild]
                                   + [open(k).read() for k in kit + headers]
                                   + [str(os.stat(h).st_mtime_ns) for h in headers]).encode())
    kept = os.path.join(kernel_source.CACHE, "kit-objects", f"{lab}-{key.hexdigest()[:16]}")
    link = os.path.join(build_dir, "link")
    shutil.rmtree(link, ignore_errors=True)
    make = ["make", "-s", "-C", kernel_dir, *kbuild_probes(kernel_dir), f"-j{jobs or os.cpu_count()}"]
    # The student's half sees the kernel tree and the compiler; the kit's,
    # also common/.
    tree = [kernel_dir, os.path.realpath(os.path.join(kernel_dir, "source")), PROBES]
    ro = tree + [os.path.join(KIT, "common")]
    kit_objs = None
    if os.path.isdir(kept):
        shutil.copytree(kept, link, symlinks=True)      # copy2: times kept
    else:
        os.makedirs(link)
        for k in kit:
            shutil.copyfile(k, os.path.join(link, os.path.basename(k)))
        with open(os.path.join(link, "Kbuild"), "w") as f:
            f.write(kbuild)
        kit_objs = sandbox.start(make + ["M=/link"] + [os.path.basename(k)[:-2] + ".o" for k in kit],
                                 ro, link, inside="/link")
    for k in kit:
        origin[f"/link/{os.path.basename(k)}"] = k
    started = [sandbox.start(make + [f"M=/build/{part}"] + (objs if part == "student" else ["modules"]),
                             tree, side) for part in parts]
    finished = [sandbox.finish(s) for s in started]
    out = _messages(finished[0][1], origin)    # the plain module's would repeat them
    for code, _text, why in finished:
        if code != 0 or why:
            raise LabError(out.rstrip() + f"\n{lab}: build failed" + (f": {why}" if why else
                           "; fix the errors above and run the command again"))
    if kit_objs:
        code, text, why = sandbox.finish(kit_objs)
        if code != 0 or why:
            raise LabError(point_home(text, origin).rstrip() + f"\n{lab}: the kit's tests did not build")
        tmp = f"{kept}.{os.getpid()}.{threading.get_ident()}"
        shutil.copytree(link, tmp, symlinks=True)
        try:
            os.rename(tmp, kept)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)      # another grader kept them first
    problems = objcheck.check(lab, [os.path.join(side, "student", o) for o in objs])
    if problems:
        raise ObjectRefused("\n".join(problems))
    # The student's objects join the kit's, and the test module is linked.
    for name, obj in zip([f for f in student if f.endswith(".c")], objs):
        shutil.copyfile(os.path.join(side, "student", obj), os.path.join(link, obj))
        origin[f"/link/{obj}"] = os.path.join(srcdir, name)
    code, text, why = sandbox.finish(sandbox.start(make + ["M=/link", "modules"], ro, link,
                                                   inside="/link"))
    out += _messages(text, origin)
    if code != 0 or why:
        raise LabError(out.rstrip() + f"\n{lab}: the tests could not be linked with your files")
    at = lambda name: os.path.join(link, name)
    if with_user:
        os.makedirs(at("plain"), exist_ok=True)
        shutil.copyfile(os.path.join(side, "plain", f"{lab}.ko"), at(f"plain/{lab}.ko"))
    progs = [_cc_static(src, at(os.path.basename(src)[:-2]), f"{lab}: the userspace tests")
             for src in user_files(lab)]
    built = Built(board=at("board.ko") if hw.devices else None, module=at(f"{lab}_kunit.ko"),
                  helper=at("kdkit.ko"), plain=at(f"plain/{lab}.ko") if with_user else None,
                  progs=progs, tools=[])
    return built, out, origin
