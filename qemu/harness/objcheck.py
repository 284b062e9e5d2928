"""Check a student's compiled objects before they meet the kit's tests.

A student's object may not define KUnit suites or sections of its own
(the test module's suites and its module structure live in sections), may
not call what a lab's driver never needs and a forger or an attacker
does (DENIED: files, ports, symbol lookup, module loading, other code's
memory, the kernel's detectors, KUnit's and the kit's internals), and may
not hold port I/O instructions (the PC's serial ports, the results channel
among them, are ports). Each refusal is one line naming the section, call
or instruction, and why.

Every other import is the tests' to grade, like any other code: those the
lab's references do not make (kunit/<lab>/imports.txt, written by
selfcheck/imports.py, and common/imports.txt: what the caller gives as
usual) are only listed, for the instructor. This file imports nothing of
the kit.

  python3 -m harness.objcheck --lab LAB [--usual FILE]... [--allow NAME]... OBJECT...
      one line a refusal (exit status 1), then one a call the FILEs
      (a name a line, '#' comments) do not list; --allow lifts a refusal
"""
import argparse
import bisect
import fnmatch
import os
import re
import subprocess
import sys

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
# NOKPROBE_SYMBOL()'s list: the tests probe the driver's functions.
NOKPROBE = "_kprobe_blacklist"
# The debug information the kit builds modules with (decode.py): never
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
# Calls a driver of these labs never needs, and what each would give it.
# Short on purpose: anything else a correct driver may call is graded by
# the tests, so this lists only capabilities, never styles of driver.
DENIED = [
    ("opens files, paths, terminals or sockets: the grader's files and the results "
     "channel are reached that way",
     ["filp_open", "file_open_name", "file_open_root", "dentry_open", "kernel_file_open",
      "kern_path", "kern_path_*", "user_path_at_empty", "kernel_read", "kernel_write",
      "kernel_read_file*", "vfs_*", "tty_kopen*", "tty_kclose", "sock_create*", "__sock_create",
      "kernel_connect", "kernel_sendmsg*", "kernel_recvmsg"]),
    ("maps I/O ports: the lab's devices are memory-mapped, and the results channel is a port",
     ["ioport_map", "devm_ioport_map"]),
    ("looks up or hooks kernel functions by name: the tests' own code among them",
     ["kallsyms_*", "__symbol_get", "module_kallsyms_*", "register_kprobe*", "register_kretprobe*",
      "register_ftrace_function", "ftrace_set_filter*", "tracepoint_probe_register*"]),
    ("loads modules or runs programs", ["__request_module", "call_usermodehelper*"]),
    ("stops or restarts the machine, which would end the grade's run for it",
     ["kernel_restart", "kernel_halt", "kernel_power_off", "emergency_restart", "machine_restart",
      "machine_halt", "machine_power_off", "orderly_poweroff", "orderly_reboot",
      "hw_protection_shutdown"]),
    ("writes other code's memory or reads memory it was not given",
     ["copy_to_kernel_nofault", "copy_from_kernel_nofault", "strncpy_from_kernel_nofault",
      "text_poke*", "set_memory_*", "access_process_vm", "get_user_pages_remote",
      "pin_user_pages_remote"]),
    ("turns off a detector that grades the lab (lockdep, KASAN)",
     ["lockdep_off", "lockdep_on", "debug_locks_off", "kasan_disable_current",
      "kasan_enable_current"]),
    ("is KUnit's or the kit's own, and belongs to the tests",
     ["kunit_*", "__kunit_*", "kdkit_*"]),
]
PORT_IO = {"in", "out", "ins", "outs", "insb", "insw", "insl", "insd", "outsb", "outsw",
           "outsl", "outsd"}


# A lab driver's code is a few KiB; its disassembly is read whole.
MAX_CODE = 1 << 20
TOOL_SECONDS = 120


def _tool(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, check=True,
                          timeout=TOOL_SECONDS).stdout


def _code_size(obj):
    """Bytes in the object's executable sections."""
    size = 0
    for line in _tool("readelf", "-SW", obj).splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+\S+\s+\S+\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)\s+\S+\s+(\S*X\S*)\s",
                     line)
        if m:
            size += int(m[1], 16)
    return size


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


def _section_sizes(obj):
    """{name: size} of the sections."""
    sizes = {}
    for line in _tool("readelf", "-SW", obj).splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)\s", line)
        if m:
            sizes[m[1]] = int(m[2], 16)
    return sizes


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


# Instructions only an operating system's core uses: tables, modes, MSR
# writes, halting the CPU. Port I/O is PORT_IO, and mov to a control or
# debug register is found by its operand.
PRIVILEGED = {"wrmsr", "wrmsrns", "lgdt", "lidt", "lldt", "ltr", "lmsw", "clts", "swapgs",
              "sysret", "sysretq", "sysexit", "iret", "iretq", "iretw", "iretl", "hlt", "invd",
              "invlpg", "xsetbv", "vmcall", "vmmcall", "vmlaunch", "vmresume", "wrfsbase",
              "wrgsbase"}
# Prefixes objdump prints before the mnemonic ("cs out", "rex.W in").
_PREFIX = r"(?:(?:rep[a-z]*|lock|[c-gs]s|data16|addr32|rex(?:\.\w+)?|notrack|bnd|\{\w+\})\s+)*"
_INSN = re.compile(r"^\s+([0-9a-f]+):\s+" + _PREFIX + r"([a-z][a-z0-9.]*)\b\s*(.*)$")
_BRANCH = re.compile(r"^([0-9a-f]+) <")


def _disassembly(obj):
    """{section: {offset: (function, mnemonic, operands)}}: every
    instruction where a linear disassembly finds it."""
    sections, sec, func = {}, None, "?"
    for line in _tool("objdump", "-d", "--no-show-raw-insn", obj).splitlines():
        m = re.match(r"^Disassembly of section (\S+):$", line)
        if m:
            sec = sections.setdefault(m[1], {})
            continue
        m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if m:
            func = m[1]
            continue
        m = _INSN.match(line)
        if m and sec is not None:
            sec[int(m[1], 16)] = (func, m[2], m[3])
    return sections


def _port_io(obj, code=None):
    """(function, what) of each port I/O or privileged instruction."""
    found = []
    for insns in (code or _disassembly(obj)).values():
        for func, insn, args in insns.values():
            if insn in PORT_IO or insn in PRIVILEGED:
                found.append((func, insn))
            elif insn.startswith("mov") and re.search(r",%[cd]r\d+$", args):
                found.append((func, f"{insn} to {args.rsplit(',', 1)[1]}"))
    return found


def _symbols(obj):
    """{name: (section, value)} of the object's symbols, sections' own included."""
    table = {}
    for line in _tool("objdump", "-t", obj).splitlines():
        m = re.match(r"^([0-9a-f]+)\s.{7}\s(\S+)\s+[0-9a-f]+\s+(\S+)$", line)
        if m:
            table.setdefault(m[3], (m[2], int(m[1], 16)))
    return table


def _hidden_entries(obj, code):
    """(where, target) of each way into the code that is not the start of
    an instruction: a direct jump or call, or a reference (a function
    pointer, a table of the kernel's) to a place in an executable
    section. Bytes reached that way are not the ones a linear
    disassembly shows, and could hide any instruction."""
    found = []
    sizes = _section_sizes(obj)
    # The end of a section is a place too: a call's relocation points there.
    starts = {sec: set(insns) | {sizes.get(sec, -1)} for sec, insns in code.items()}
    for sec, insns in code.items():
        for at, (func, insn, args) in insns.items():
            m = _BRANCH.match(args)
            if (insn.startswith("j") or insn.startswith("call") or insn.startswith("loop")) and m:
                if int(m[1], 16) not in starts[sec]:
                    found.append((func, f"{sec}+{int(m[1], 16):#x}"))
    symbols = _symbols(obj)
    ordered = {sec: sorted(places) for sec, places in starts.items()}
    where = None
    for line in _tool("readelf", "-rW", obj).splitlines():
        m = re.match(r"^Relocation section '\.rela(\S*)'", line)
        if m:
            where = m[1]
            continue
        m = re.match(r"^([0-9a-f]+)\s+[0-9a-f]+\s+(R_X86_64_\w+)\s+[0-9a-f]+\s+(\S+)\s*([+-])\s*([0-9a-f]+)$",
                     line)
        if not m or m[3] not in symbols:
            continue
        sec, value = symbols[m[3]]
        if sec not in code:
            continue
        target = value + (int(m[5], 16) if m[4] == "+" else -int(m[5], 16))
        # In code, a PC-relative field counts from the end of its instruction.
        if where in code and m[2] in ("R_X86_64_PC32", "R_X86_64_PLT32"):
            at = int(m[1], 16)
            places = ordered[where]
            end = places[bisect.bisect_right(places, at)] if places[-1] > at else at + 4
            target += end - at
        if target not in starts[sec]:
            found.append((where or "?", f"{sec}+{target:#x}"))
    return found


# What modpost's generated part of a module (<module>.mod.o) holds: the
# module structure, its .modinfo, notes. A device table's string that
# closed modpost's quotes would add code or data of its own there.
MODPOST_SECTIONS = {".modinfo", ".gnu.linkonce.this_module", "__versions"}
MODPOST_SYMBOLS = re.compile(r"^(__this_module|____versions|__UNIQUE_ID_\w+|_note_\d+)$")
MODPOST_INFO = {"alias", "depends", "name", "vermagic", "retpoline", "intree", "srcversion",
                "import_ns"}


def check_modpost(mod_o, reference):
    """Refusals for a module's generated part, mod_o, against the kit's
    own (reference, a .mod.o modpost made from the kit's sources alone)."""
    name = os.path.basename(mod_o)
    problems = []
    sizes, ref_sizes = _section_sizes(mod_o), _section_sizes(reference)
    table = dict(_section_table(mod_o))
    for sec, size in sizes.items():
        if "A" not in table.get(sec, "") or sec.startswith(".note") or sec in (".modinfo", "__versions"):
            continue
        if size != ref_sizes.get(sec, 0):
            problems.append(f"{name}: section {sec} holds {size} bytes where modpost writes "
                            f"{ref_sizes.get(sec, 0)}: a device table's string wrote C into the module")
    for f in (l.split() for l in _tool("nm", mod_o).splitlines()):
        if len(f) == 3 and not MODPOST_SYMBOLS.match(f[2]):
            problems.append(f"{name}: defines {f[2]}, which modpost never writes: a device "
                            "table's string wrote C into the module")
        elif len(f) == 2 and f[1] not in MODULE_ENTRIES:
            problems.append(f"{name}: calls {f[1]}, which modpost never writes")
    info = subprocess.run(["objcopy", "-O", "binary", "--only-section=.modinfo", mod_o, "/dev/stdout"],
                          capture_output=True, timeout=TOOL_SECONDS).stdout
    keys = [entry.split(b"=", 1)[0].decode("ascii", "replace")
            for entry in info.split(b"\0") if entry]
    for key in sorted(set(keys)):
        if key not in MODPOST_INFO or (key in ("name", "vermagic") and keys.count(key) > 1):
            problems.append(f"{name}: .modinfo holds '{key}' where modpost writes none or one")
    return problems


def denied(sym):
    """Why a driver may not call sym, or None."""
    return next((why for why, names in DENIED if any(fnmatch.fnmatchcase(sym, p) for p in names)),
                None)


def _imports(obj):
    return [sym for sym in _tool("nm", "-u", obj).split() if sym != "U"]


def _defined(obj):
    """The global names the object defines."""
    return [f[2] for f in (line.split() for line in _tool("nm", "-g", "--defined-only", obj).splitlines())
            if len(f) == 3]


def kernel_exports(kernel_dir):
    """What the kernel exports to modules (its Module.symvers)."""
    with open(os.path.join(kernel_dir, "Module.symvers")) as f:
        return {line.split("\t")[1] for line in f if line.count("\t") >= 2}


def taken(kernel_dir, kit_objects):
    """Names a student's object may not define: what the kernel exports and
    the kit's objects define. The suites are linked into one module with
    the student's objects, so a definition of one of them (strcmp,
    kunit_do_failed_assertion, a kit helper) would take the place of the
    real one in the tests' own calls."""
    names = kernel_exports(kernel_dir)
    for obj in kit_objects:
        names.update(_defined(obj))
    # What module_init() and module_exit() define in every module, the
    # kit's (kdkit.ko) as the student's: never called across modules.
    return names - MODULE_ENTRIES


MODULE_ENTRIES = {"init_module", "cleanup_module"}


def interface(student_objects, kit_objects, taken_names):
    """The names of the student's objects that anything else calls: the
    kit's objects (the lab's functions the tests call), the student's
    other objects, and the module's entry points; never a name the kernel
    or the kit defines (taken()). Every other global of theirs is made
    local (localize()), so no definition of the student's can stand in
    for one the tests mean, even where the refusal is lifted."""
    wanted = set(MODULE_ENTRIES)
    for obj in kit_objects + student_objects:
        wanted.update(_imports(obj))
    defined = {name for obj in student_objects for name in _defined(obj)}
    return (defined & wanted) - (taken_names - MODULE_ENTRIES)


def localize(obj, keep, out):
    """Write obj to out with every global it defines but those in keep made local."""
    with open(out + ".keep", "w") as f:
        # objcopy refuses an empty list: a name no C code can define.
        f.write("".join(f"{name}\n" for name in sorted(keep) or [".kdkit.none"]))
    try:
        subprocess.run(["objcopy", f"--keep-global-symbols={out}.keep", obj, out],
                       capture_output=True, check=True, timeout=TOOL_SECONDS)
    finally:
        os.unlink(out + ".keep")


def own_calls(obj):
    """What the object's code calls, less what the compiler's
    instrumentation calls by itself."""
    return [sym for sym in _imports(obj)
            if not any(fnmatch.fnmatchcase(sym, p) for p in INSTRUMENTATION)]


def check(lab, objects, allow=(), taken_names=frozenset()):
    """One line for each refusal in the student's objects of lab; allow
    names calls an instructor lets through; taken_names, names they may not
    define (taken())."""
    problems = []
    for obj in objects:
        name = os.path.basename(obj)
        code = _code_size(obj)
        if code > MAX_CODE:
            problems.append(f"{name}: {code >> 10} KiB of code, where a lab driver has a few; "
                            "refused unread")
            continue
        for sec, flags in _section_table(obj):
            base = sec[len(".rela"):] if sec.startswith(".rela") else sec
            if "A" not in flags and any(fnmatch.fnmatchcase(base, p) for p in DEBUG_SECTIONS):
                continue
            if "kunit" in base:
                problems.append(f"{name}: section {sec}: a KUnit suite or table of its own; "
                                "the lab's tests are the kit's")
            elif base == NOKPROBE:
                problems.append(f"{name}: section {sec}: NOKPROBE_SYMBOL(), which would keep "
                                "the tests' probes off the driver's functions")
            elif not any(fnmatch.fnmatchcase(base, p) for p in SECTIONS):
                problems.append(f"{name}: section {sec}: not one the kernel's build makes; "
                                "remove the __section() or section attribute")
        # KASAN's constructors are GCC's _sub_I_/_sub_D_ functions, which sit
        # alone in .text.startup and .text.exit.
        for target in _ctor_targets(obj) + _functions_in(obj, CTOR_HOMES):
            if not (CTOR.match(target) or target in CTOR_HOMES):
                problems.append(f"{name}: constructor {target}: code that would run before "
                                "the tests; remove __attribute__((constructor))")
        for sym in _imports(obj):
            why = denied(sym)
            if why and sym not in allow:
                problems.append(f"{name}: calls {sym}, which {why}; a {lab} driver has no "
                                f"reason to (an instructor can allow it: KDKIT_ALLOW_IMPORTS={sym})")
        for sym in _defined(obj):
            if sym in taken_names:
                problems.append(f"{name}: defines {sym}, which the kernel or the kit defines: "
                                "the tests' own calls to it would reach yours; make yours "
                                "static or rename it")
        code = _disassembly(obj)
        for func, insn in _port_io(obj, code):
            what = "port I/O" if insn in PORT_IO else "privileged"
            problems.append(f"{name}: {func} holds the {what} instruction '{insn}'; "
                            "the lab's devices are memory-mapped, and a driver leaves the CPU to the kernel")
        for where, target in _hidden_entries(obj, code):
            problems.append(f"{name}: {where} leads into the middle of an instruction ({target}): "
                            "code hidden in other code's bytes")
    return problems


def unusual(objects, usual):
    """The calls of the objects that usual (the references' and the
    ordinary driver API) does not list: graded as any code, only shown."""
    found = []
    for obj in objects:
        found += [sym for sym in own_calls(obj) if sym not in usual and sym not in found]
    return found


def main(argv):
    p = argparse.ArgumentParser(prog="objcheck", description=__doc__.splitlines()[0])
    p.add_argument("--lab", required=True)
    p.add_argument("--usual", action="append", default=[], metavar="FILE")
    p.add_argument("--allow", action="append", default=[], metavar="NAME")
    p.add_argument("objects", nargs="+")
    args = p.parse_args(argv)
    usual = set()
    for path in args.usual:
        with open(path) as f:
            usual |= {l.split("#")[0].strip() for l in f} - {""}
    problems = check(args.lab, args.objects, args.allow)
    print("\n".join(problems) or "objcheck: nothing to refuse")
    if args.usual:
        for sym in unusual(args.objects, usual):
            print(f"objcheck: unusual: {sym}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
