"""Name the student's lines in kernel reports.

A frame of a module the kit built, "vser_read+0x31/0x138 [vser_kunit]",
gains the source line it stands for: "(labs/vser/vser.c:123)", or
"(vser_take() at labs/vser/vser.c:98, inlined)" when the code was inlined
there (build paths, which the reports turn into the student's). The modules are
built with debug information (-g) for this; the kernel needs none. The
lines are found with binutils (objdump for the symbol's section and
value, addr2line for the line), as the kernel's scripts/faddr2line does.
"""
import os
import re
import subprocess

FRAME = re.compile(r"\b([A-Za-z_][\w.]*)\+(0x[0-9a-f]+)/0x[0-9a-f]+ \[(\w+)\]")
SYMBOL = re.compile(r"^([0-9a-f]+) .{7} (\S+)\s+[0-9a-f]+ (\S+)$")


# A report names a few dozen frames; a driver may print thousands of fakes.
MAX_FRAMES = 100
TOOL_SECONDS = 30


def _symbols(ko):
    """{function: (section, value)} from the module's symbol table."""
    out = subprocess.run(["objdump", "-t", ko], capture_output=True, text=True,
                         timeout=TOOL_SECONDS).stdout
    syms = {}
    for line in out.splitlines():
        m = SYMBOL.match(line)
        # .text, and .init.text or .exit.text for a module's init and exit.
        if m and (m[2].startswith(".text") or m[2].endswith(".text")):
            syms.setdefault(m[3], (m[2], int(m[1], 16)))
    return syms


def _where(ko, section, addr):
    """[(function, file:line)], innermost first, for one address."""
    out = subprocess.run(["addr2line", "-e", ko, "-j", section, "-f", "-i", hex(addr)],
                         capture_output=True, text=True, timeout=TOOL_SECONDS).stdout.split("\n")
    pairs = [(out[i], out[i + 1]) for i in range(0, len(out) - 1, 2)]
    return [(fn, loc.split(" (discriminator")[0]) for fn, loc in pairs if not loc.startswith("??")]


def _exact(line):
    """Whether the frames of a report line stand for the instruction itself
    (the faulting RIP, a WARNING's address), not a return address."""
    return "RIP:" in line or line.lstrip().startswith("WARNING:")


def locate(lines, modules, budget=None):
    """{(frame text, exact): its source location} for the frames in lines
    of the given modules ({module name: .ko path}); budget, a one-item
    list of the lookups a whole run may still make (MAX_FRAMES if not
    given)."""
    found, syms = {}, {}
    budget = budget if budget is not None else [MAX_FRAMES]
    for line in lines:
        exact = _exact(line)
        for m in FRAME.finditer(line):
            fn, off, mod = m[1], int(m[2], 16), m[3]
            if (m[0], exact) in found or mod not in modules or not os.path.exists(modules[mod]):
                continue
            if budget[0] <= 0:
                return found
            budget[0] -= 1
            if mod not in syms:
                syms[mod] = _symbols(modules[mod])
            if fn not in syms[mod]:
                continue
            section, value = syms[mod][fn]
            # A return address is the instruction after the call: look one
            # byte back, as the kernel's decoder does; the faulting
            # instruction itself is looked up where it is.
            chain = _where(modules[mod], section, value + (off if exact else max(off - 1, 0)))
            if chain:
                found[(m[0], exact)] = describe(chain, fn)
    return found


# A kernel header's path, where the kernel's own inline helpers live.
KERNEL_HEADER = re.compile(r"(^|/)(arch/[^/]+/)?include/(linux|asm|asm-generic|uapi|kunit|trace)/")


def describe(chain, fn):
    """One address's place, from its inline chain (innermost first) in
    function fn: the innermost frame outside the kernel's headers, since
    writeb() or list_add() inlined into the driver is the driver's line."""
    k = next((i for i, (_f, loc) in enumerate(chain) if not KERNEL_HEADER.search(loc)), 0)
    inner_fn, inner = chain[k]
    helper = f", where {chain[k - 1][0]}() was inlined" if k else ""
    if inner_fn != fn and k < len(chain) - 1:
        return f"{inner_fn}() at {inner}, inlined{helper}"
    return inner + helper


def annotate(lines, modules, budget=None):
    """lines with each known frame followed by its source location."""
    where = locate(lines, modules, budget)
    if not where:
        return lines
    out = []
    for line in lines:
        exact = _exact(line)
        out.append(FRAME.sub(lambda m: f"{m[0]} ({where[(m[0], exact)]})"
                             if (m[0], exact) in where else m[0], line))
    return out


def annotate_outcome(outcome, modules):
    """Decode the frames in every case log and kernel report of a run,
    MAX_FRAMES lookups in all."""
    budget = [MAX_FRAMES]
    for cases in outcome.cases.values():
        for case in cases.values():
            case.log = annotate(case.log, modules, budget)
    for suite, reports in outcome.health.items():
        outcome.health[suite] = [annotate(r, modules, budget) for r in reports]
