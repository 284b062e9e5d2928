#!/usr/bin/env python3
"""Check a student's compiled objects before they meet the kit's tests.

A student's object may not define KUnit suites or sections of its own
(the test module's suites and its module structure live in sections), may
import only symbols a driver of its lab has reason to call, and may not
hold port I/O instructions (the PC's serial ports, the results channel
among them, are ports). Each violation is one line naming the section,
symbol or instruction.

What a lab may import is kunit/<lab>/imports.txt (what the reference and
alternative solutions import on both kernels, written by `objcheck.py
--update`) with common/imports.txt (what any driver may call, written by
hand) and the compiler's own instrumentation (KASAN, lockdep, retpolines).

  objcheck.py OBJECT... --lab LAB   check objects, one line a violation
  objcheck.py --update              rewrite every kunit/<lab>/imports.txt
"""
import fnmatch
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
KIT = os.path.dirname(HERE)

# Sections the kernel's build makes from ordinary C (and KASAN's builds).
SECTIONS = ["", ".text", ".text.*", ".data", ".data.*", ".rodata", ".rodata.*", ".bss", ".bss.*",
            ".init.*", ".exit.*", ".ref.*", ".noinstr.text", ".sched.text", ".spinlock.text",
            ".cpuidle.text", ".kprobes.text", ".modinfo", "__param", ".comment", ".note.*",
            ".symtab", ".strtab", ".shstrtab", ".orc_unwind", ".orc_unwind_ip", ".smp_locks",
            "__bug_table", "__jump_table", "__ex_table", ".fixup", ".discard.*", ".altinstructions",
            ".altinstr_replacement", ".altinstr_aux", ".static_call_sites", ".static_call.text",
            ".retpoline_sites", ".return_sites", ".call_sites", ".ibt_endbr_seal", "__mcount_loc",
            "__patchable_function_entries", "__dyndbg", "__dyndbg_classes", ".printk_index",
            "__ksymtab*", "___ksymtab*", "__kcrctab*", "_ftrace_events", "_ftrace_eval_map",
            "__tracepoints*", "__bpf_raw_tp_map", ".parainstructions", ".init_array", ".fini_array",
            ".group"]
# The debug information the kit builds modules with (qemu/decode.py): never
# loaded, so allowed only where the section is not allocated.
DEBUG_SECTIONS = [".debug_*"]
# Constructors only as KASAN makes them (GCC's _sub_I_/_sub_D_ functions):
# a constructor of the student's own would run before the harness does.
CTOR_SECTIONS = (".init_array", ".fini_array")
CTOR = re.compile(r"^_sub_[ID]_\d+_\d+$")
CTOR_HOMES = (".text.startup", ".text.exit")
# What the compiler and the strict kernel's instrumentation call by itself.
INSTRUMENTATION = ["__asan_*", "__kasan_*", "__ubsan_*", "__sanitizer_cov_*", "__tsan_*",
                   "__x86_indirect_thunk_*", "__x86_return_thunk", "__fentry__",
                   "__stack_chk_fail", "__SCT__*", "__SCK__*", "__preempt_count", "current_task",
                   "pcpu_hot", "this_cpu_off", "__per_cpu_offset", "__this_module",
                   "lockdep_*", "lock_acquire", "lock_release", "lock_is_held_type",
                   "debug_lockdep_rcu_enabled", "*_nested", "__might_*", "__list_*_valid"]
PORT_IO = {"in", "out", "ins", "outs", "insb", "insw", "insl", "insd", "outsb", "outsw",
           "outsl", "outsd"}


def _symbols(path):
    """Symbols listed in a file, a name a line; '#' starts a comment."""
    try:
        with open(path) as f:
            return {l.split("#")[0].strip() for l in f} - {""}
    except FileNotFoundError:
        return set()


def allowed_imports(lab):
    return (_symbols(os.path.join(KIT, "kunit", lab, "imports.txt"))
            | _symbols(os.path.join(KIT, "common", "imports.txt")))


def _tool(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def _section_table(obj):
    """[(name, flags)] of the sections, in index order."""
    table = []
    for line in _tool("readelf", "-SW", obj).splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S*)\s*(.*)$", line)
        if m:
            rest = m[2].split()
            # Type, address, offset, size, entry size, [flags,] link, info, align.
            flags = rest[5] if len(rest) == 9 else ""
            table.append((m[1] if m[1] != "NULL" else "", flags))
    return table


def _sections(obj):
    """Section names, in index order."""
    return [name for name, _flags in _section_table(obj)]


def _functions_in(obj, wanted):
    """Names of the functions defined in the sections named in wanted."""
    names = _sections(obj)
    found = []
    for line in _tool("readelf", "-sW", obj).splitlines():
        f = line.split()
        if len(f) >= 8 and f[3] == "FUNC" and f[6].isdigit() and names[int(f[6])] in wanted:
            found.append(f[7])
    return found


def _ctor_targets(obj):
    """Symbols the relocations of .init_array/.fini_array point to."""
    targets, inside = [], False
    for line in _tool("readelf", "-rW", obj).splitlines():
        if line.startswith("Relocation section"):
            inside = any(f"'.rela{s}'" in line for s in CTOR_SECTIONS)
        elif inside and re.match(r"^[0-9a-f]{8,}", line):
            fields = line.split()
            targets.append(fields[4] if len(fields) > 4 else "?")
    return targets


def _port_io(obj):
    """(function, mnemonic) of each port I/O instruction."""
    found, func = [], "?"
    for line in _tool("objdump", "-d", "--no-show-raw-insn", obj).splitlines():
        m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if m:
            func = m[1]
            continue
        m = re.match(r"^\s+[0-9a-f]+:\s+(?:rep[a-z]*\s+)?([a-z]+)\b", line)
        if m and m[1] in PORT_IO:
            found.append((func, m[1]))
    return found


def check(lab, objects):
    """One line for each violation in the student's objects of lab."""
    allow = allowed_imports(lab)
    problems = []
    for obj in objects:
        name = os.path.basename(obj)
        for sec, flags in _section_table(obj):
            base = sec[len(".rela"):] if sec.startswith(".rela") else sec
            if "A" not in flags and any(fnmatch.fnmatchcase(base, p) for p in DEBUG_SECTIONS):
                continue
            if "kunit" in base:
                problems.append(f"{name}: section {sec}: a KUnit suite or table of its own; "
                                "the lab's tests are the kit's")
            elif not any(fnmatch.fnmatchcase(base, p) for p in SECTIONS):
                problems.append(f"{name}: section {sec}: not one the kernel's build makes; "
                                "remove the __section() or section attribute")
        # KASAN's constructors are GCC's _sub_I_/_sub_D_ functions, which sit
        # alone in .text.startup and .text.exit.
        for target in _ctor_targets(obj) + _functions_in(obj, CTOR_HOMES):
            if not (CTOR.match(target) or target in CTOR_HOMES):
                problems.append(f"{name}: constructor {target}: code that would run before "
                                "the tests; remove __attribute__((constructor))")
        for sym in _tool("nm", "-u", obj).split():
            if sym == "U" or sym in allow or any(fnmatch.fnmatchcase(sym, p) for p in INSTRUMENTATION):
                continue
            problems.append(f"{name}: calls {sym}, which a {lab} driver has no reason to call "
                            f"(kunit/{lab}/imports.txt and common/imports.txt list what it may)")
        for func, insn in _port_io(obj):
            problems.append(f"{name}: {func} holds the port I/O instruction '{insn}'; "
                            "the lab's devices are memory-mapped")
    return problems


def reference_imports(lab):
    """What the reference and the alternative import, on both kernels, as
    the sandbox compiles them (without the check that uses the result)."""
    import kdkit
    import lab as labmod
    found = set()
    dirs = [os.path.join(KIT, "solutions", lab), os.path.join(KIT, "kunit", lab, "alternative")]
    for flavour in ("fast", "strict"):
        for src in filter(os.path.isdir, dirs):
            with tempfile.TemporaryDirectory(prefix="kdkit-build-") as d:
                try:
                    labmod.build_sandboxed(lab, src, kdkit.kernel_dir(flavour), d)
                except labmod.ObjectRefused:
                    pass        # the objects are made before they are checked
                for f in labmod.student_files(lab):
                    if f.endswith(".c"):
                        obj = os.path.join(d, "sandbox", "student", f[:-2] + ".o")
                        found |= set(_tool("nm", "-u", obj).split())
    return {s for s in found - {"U"} if not any(fnmatch.fnmatchcase(s, p) for p in INSTRUMENTATION)}


def update():
    import lab as labmod
    for lab in labmod.labs():
        path = os.path.join(KIT, "kunit", lab, "imports.txt")
        with open(path, "w") as f:
            f.write(f"# What the {lab} reference and alternative solutions import, on both\n"
                    "# kernels: written by qemu/objcheck.py --update, checked by make check.\n"
                    "# A student's driver may also call what common/imports.txt lists.\n")
            f.writelines(s + "\n" for s in sorted(reference_imports(lab)))
        print(f"objcheck: {os.path.relpath(path, KIT)}")


def main(argv):
    if argv == ["--update"]:
        update()
        return 0
    if len(argv) < 3 or "--lab" not in argv[:-1]:
        print(__doc__.split("\n\n")[-1], file=sys.stderr)
        return 2
    i = argv.index("--lab")
    lab, objects = argv[i + 1], argv[:i] + argv[i + 2:]
    problems = check(lab, objects)
    print("\n".join(problems) or "objcheck: nothing to refuse")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
