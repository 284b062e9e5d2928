"""Strict KTAP parsing for KUnit results, and kernel-log health checks.

Two sources feed it. A suite's results file from debugfs, copied by the
guest to the results channel, is the trusted one and is parsed strictly.
The console (the kernel log) is read only to find which case a crash
stopped, and to find reports (oops, WARNING, KASAN...) that fail a suite.
A driver can print anything there, KTAP lines included, so no result is
ever taken from it.
"""
import re

PASSED, FAILED, SKIPPED, CRASHED = "PASSED", "FAILED", "SKIPPED", "CRASHED"


class KtapError(Exception):
    """The results were not the KTAP KUnit writes."""


class Case:
    def __init__(self, name, status, log=()):
        self.name, self.status, self.log = name, status, list(log)

    def __repr__(self):
        return f"Case({self.name!r}, {self.status})"


STATS = re.compile(r"^# (Totals|\S+): pass:\d+ fail:\d+ skip:\d+ total:\d+$")
RESULT = re.compile(r"^(ok|not ok) (\d+) (?:- )?([^#]*?)\s*(?:# (SKIP)\b\s*(.*))?$")


def _status(ok, skip):
    if skip:
        return SKIPPED
    return PASSED if ok == "ok" else FAILED


def parse_suite(text):
    """Parse one debugfs results file into (suite name, [Case]).

    Raises KtapError on anything that is not the shape KUnit writes.
    """
    lines = [l.rstrip("\r\n") for l in text.splitlines()]
    lines = [l for l in lines if l.strip()]
    head = ["KTAP version 1", "1..1", "    KTAP version 1"]
    if lines[:3] != head or len(lines) < 6:
        raise KtapError("results do not start with a KTAP header")
    sub = re.match(r"^    # Subtest: (\S+)$", lines[3])
    plan = re.match(r"^    1\.\.(\d+)$", lines[4])
    if not sub or not plan:
        raise KtapError("results have no subtest header and plan")
    name, planned = sub[1], int(plan[1])
    last = RESULT.match(lines[-1])
    if not last or last[2] != "1" or last[3] != name:
        raise KtapError(f"results for {name} do not end with the suite's result line")
    cases, log, number = [], [], 0
    for line in lines[5:-1]:
        if STATS.match(line):
            continue
        # KUnit writes the message of a failed expectation unindented.
        body = line[4:] if line.startswith("    ") else line
        m = RESULT.match(body)
        if m:
            # A case whose 4 KiB log overflowed loses its result line: a
            # gap, whose case then has no result. Never a step back.
            if int(m[2]) <= number or int(m[2]) > planned:
                raise KtapError(f"{name}: case {m[2]} is out of order")
            number = int(m[2])
            mine, lost = _split_log(log, m[3])
            # The lost case's lines name it: they are its, not the next's.
            cases += [Case(other, FAILED, [LOST] + lines) for other, lines in lost.items()]
            status = _status(m[1], m[4])
            # A skip says why on its result line: the reader needs it.
            why = [f"skipped: {m[5] or 'no reason given'}"] if status == SKIPPED else []
            cases.append(Case(m[3], status, why + mine))
            log = []
        else:
            log.append(body)
    if len(cases) > planned:
        raise KtapError(f"{name}: {len(cases)} results for a plan of {planned}")
    return name, cases


LOST = "no result was reported for this case (its log may have overflowed)"
# KUnit starts each message of a case with "# <case>: ".
OWNER = re.compile(r"^# (\w+): ")


def _split_log(log, case):
    """(case's lines, {other case: its lines}): the lines since the last
    result line, by the case each message names; a line that names none
    belongs with the message before it."""
    mine, lost, owner = [], {}, case
    for line in log:
        m = OWNER.match(line)
        owner = m[1] if m else owner
        (mine if owner == case else lost.setdefault(owner, [])).append(line)
    return mine, lost


HEALTH = re.compile(
    r"(WARNING:|BUG:|Oops|Kernel panic|kernel BUG at|general protection fault|"
    r"KASAN:|UBSAN:|possible recursive locking|possible circular locking|"
    r"inconsistent lock state|DMA-API:|unreferenced object|suspected memory leak|"
    r"INFO: task .* blocked for more than|watchdog: BUG: soft lockup|"
    r"qemu: hardware error:|kdkit: the kernel log passed|kdkit: the detectors were switched off)")
# Any other report the kernel makes with a call trace counts too (lockdep's
# "INFO: trying to register non-static key", x86's "iounmap: bad address",
# list and refcount corruption...): a correct driver makes the kernel
# print no call trace, and the list above cannot name every report. The
# report is quoted from up to LEAD lines before its trace.
TRACE = re.compile(r"^\s*Call Trace:\s*$")
LEAD = 8
# Where a report's lead-in stops: a KTAP line, or one of the kit's.
BOUNDARY = re.compile(r"^\s*(ok |not ok |# |KTAP |kdkit: |$)")
SAME = 100


# Register dumps say little to a student; the call trace says where.
# The RIP line stays: it names the function that faulted.
REGISTERS = re.compile(r"^(RSP|RAX|RDX|RBP|R\d+|FS|CS|CR2|DR\d|PKRU|Code):")


# The task a report came from ("CPU: 0 PID: 32 Comm: kworker/0:1 ...").
# A case runs in KUnit's thread or in the kit's programs; these are the
# kernel's own threads, where timers, work items and interrupts run.
COMM = re.compile(r"\bComm: (\S+)")
KERNEL_THREADS = re.compile(r"^(swapper|kworker|ksoftirqd|rcu_|migration|irq/)")
IRQ_FRAME = re.compile(r"^\s*<(IRQ|SOFTIRQ|NMI)>\s*$")


def report_context(report):
    """A line to add to a report that came from an interrupt or a kernel
    thread rather than from the running case: what set it off may have
    been done by an earlier case (a timer or work item left behind)."""
    comm = next((m[1] for m in map(COMM.search, report) if m), None)
    # The watchdog reports from its timer interrupt on the task it found stuck.
    watchdog = bool(report) and "watchdog:" in report[0]
    if any(IRQ_FRAME.match(line) for line in report) and not watchdog:
        where = "an interrupt"
    elif comm and KERNEL_THREADS.match(comm):
        where = f"the kernel thread {comm}"
    else:
        return None
    return (f"(this came from {where}, not from the case's own thread: "
            f"a timer, work item or interrupt set up earlier, perhaps by an earlier case, may be the cause)")


def located_reports(lines, context=25):
    """Kernel reports in a list of console lines: [(index of the report's
    first line, [its lines])]."""
    reports, i = [], 0
    while i < len(lines):
        start = i if HEALTH.search(lines[i]) else None
        # A trace soon after a known report's first line is that report's.
        if start is None and TRACE.match(lines[i]) and not (reports and i - reports[-1][0] < SAME):
            start, floor = i, max(i - LEAD, reports[-1][2] if reports else 0)
            while start > floor and not BOUNDARY.match(lines[start - 1]):
                start -= 1
        if start is None:
            i += 1
            continue
        report, j = [], start
        while j < len(lines) and len(report) < context:
            if not REGISTERS.match(lines[j].strip()):
                report.append(lines[j])
            j += 1
        reports.append((start, report, j))
        i = max(j, i + 1)
    return [(at, report) for at, report, _end in reports]


def health_reports(lines, context=25):
    """Kernel reports in a list of console lines, each as a list of lines."""
    return [report for _at, report in located_reports(lines, context)]


def case_lines(lines):
    """The case result lines of a suite on the console: [(index, number,
    name)]. The console is the driver's to print on as well, so these
    only ever say where in a run something happened, never a result."""
    found = []
    for i, line in enumerate(lines):
        line = line.rstrip()
        if line.startswith("    ") and not line.startswith("     "):
            m = RESULT.match(line[4:])
            if m:
                found.append((i, int(m[2]), m[3]))
    return found


def console_suite(lines, suite):
    """Read one suite's progress from console lines.

    Returns (started, finished, [Case], (first, end)) for the last time the
    suite started: the cases reported so far, and the span of lines it
    covered, so that reports inside it can be charged to it.
    """
    start = None
    for i, line in enumerate(lines):
        if line.rstrip() == f"    # Subtest: {suite}":
            start = i
    if start is None:
        return False, False, [], (0, 0)
    cases, log = [], []
    for i in range(start + 1, len(lines)):
        line = lines[i].rstrip()
        top = RESULT.match(line)
        if top and top[3] == suite:
            return True, True, cases, (start, i + 1)
        m = RESULT.match(line[4:]) if line.startswith("    ") and not line.startswith("     ") else None
        if m and int(m[2]) == len(cases) + 1:
            cases.append(Case(m[3], _status(m[1], m[4]), log))
            log = []
        elif line.startswith("    # ") or line.startswith("    Expected") or line.startswith("        "):
            log.append(line[4:])
    return True, False, cases, (start, len(lines))
