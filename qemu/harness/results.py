"""Turn one or more boots of a lab into per-case results.

A boot runs the plan's suites in order. The results channel carries the
KTAP of each suite that finished; the console shows which case a crash
stopped. That case is marked crashed and every case still without a
result runs again in a fresh boot, so one crash never loses the others.
"""
import re
import secrets

from harness import ktap
from harness.ktap import CRASHED, FAILED, PASSED, SKIPPED, Case

MARK = re.compile(r"^kdkit: (.*)$")
# What kdkit.ko prints on the console when the cases changed (common/kdkit.h).
TAMPERED = "kdkit: the test module changed its own test cases"
# ... and when a module exit left a name registered (common/kdkit_left.c).
DIRTY = "kdkit: the kernel is left dirty:"
# Lockdep's reports: after its first, lockdep is off for the rest of the boot.
LOCKDEP = re.compile(r"possible recursive locking|possible circular locking|inconsistent lock "
                     r"state|possible irq lock inversion|bad unlock balance|held lock freed|"
                     r"INFO: trying to register non-static key|suspicious RCU usage|"
                     r"lock held when returning to user space")
# Lines of kernel reports a failed case's log takes at most.
REPORT_LINES = 80
# Reports kept for a suite's health: a flood of them says no more than these.
MAX_REPORTS = 20
# KUnit prints a failed check on the console the moment it fails, named
# after its case; a case reported passed with such a line was forged.
FAILED_AT = re.compile(r"# (\w+): (?:EXPECTATION|ASSERTION) FAILED at ")
PANIC = "Kernel panic - not syncing"
# The console lost lines (printk's buffer overran): an absence proves nothing.
DROPPED = re.compile(r"printk messages dropped|messages suppressed")


# What a failed unload means for the student's code (errno texts as busybox prints them).
UNLOAD = {
    "Resource temporarily unavailable": "the module is still in use: a file left open, or a "
    "reference taken (try_module_get(), a cdev's .owner) and never given back",
    "Device or resource busy": "another module still uses it",
}


def explained(note):
    """A note from /init, with what it means for the student when known."""
    m = re.match(r"rmmod (\S+) failed: (.*)$", note)
    if m and m[2] in UNLOAD:
        return f"{note} ({UNLOAD[m[2]]})"
    return note


# Tokens a run has (each of /init's lines spends one), and their size.
TOKENS = 400
TOKEN_BYTES = 8


def new_tokens():
    return [secrets.token_hex(TOKEN_BYTES) for _ in range(TOKENS)]


def read_channel(text, tokens):
    """Split the results channel into ({suite: ktap text}, [notes], done).
    Only markers that carry one of the run's tokens, each used once and in
    order, count: /init has them, the modules under test never see one
    before it is spent."""
    suites, notes, current, buf, done = {}, [], None, [], False
    order = {t: i for i, t in enumerate(tokens)}
    spent = -1
    for line in text.splitlines():
        m = MARK.match(line.strip("\r"))
        if m:
            token, _, said = m[1].partition(" ")
            if order.get(token, -1) > spent:
                spent = order[token]
                m = [m[0], said]
            else:
                m = None
        if m and current and m[1] == f"end suite {current}":
            suites[current] = "\n".join(buf) + "\n"
            current, buf = None, []
        elif current:
            buf.append(line.rstrip("\r"))
        elif m and m[1].startswith("suite "):
            current = m[1][6:]
        elif m and m[1] == "done":
            done = True
        elif m:
            notes.append(m[1])
    return suites, notes, done


def contradicted(suite, cases, lines):
    """Evidence, one line each, that the suite's results (cases, from the
    results channel) were forged: the kernel log, which KUnit writes as
    each check fails and each case ends, shows a case reported passed
    failing, or shows no result for it though the suite finished there."""
    started, finished, _seen, (a, b) = ktap.console_suite(lines, suite)
    span = lines[a:b] if started else []
    said = {}
    for i, _n, name in ktap.case_lines(span):
        said.setdefault(name, []).append(span[i].strip())
    failed = {}
    for line in span:
        m = FAILED_AT.search(line)
        if m:
            failed.setdefault(m[1], line.strip())
    lossy = any(DROPPED.search(l) for l in lines)
    evidence = []
    # KUnit starts a suite once a run; a second start was printed by a module.
    starts = sum(l.rstrip() == f"    # Subtest: {suite}" for l in lines)
    if starts > 1:
        evidence.append(f"{suite}: the kernel log shows the suite starting {starts} times in one run")
    for case in cases:
        if case.status != PASSED:
            continue
        shown = said.get(case.name, [])
        denied = failed.get(case.name) or next((l for l in shown if l.startswith("not ok")), None)
        if denied:
            evidence.append(f"{suite}.{case.name}: reported passed; the kernel log says \"{denied}\"")
        elif not shown and finished and not lossy:
            evidence.append(f"{suite}.{case.name}: reported passed; the kernel log, where "
                            "the suite ran to its end, has no result for it")
    return evidence


class Outcome:
    """What is known so far about every expected case of a lab run."""

    def __init__(self, plan, suites=None):
        self.plan = plan                          # [(suite, [case])] to run
        # Each suite's whole list of cases, where the plan runs only some.
        self.suites = dict(suites or plan)
        self.cases = {s: {} for s, _ in plan}     # suite -> case -> Case
        self.health = {}                          # suite -> [report lines]
        self.notes = []                           # problems outside suites
        self.this_boot = set()                    # (suite, case) the boot being added gave
        self.flags = []                           # evidence of forged results, for the instructor

    def pending(self):
        """Selectors for the cases with no result yet, for kdkit.ko's filter."""
        sel = []
        for suite, cases in self.plan:
            left = [c for c in cases if c not in self.cases[suite]]
            if len(left) == len(self.suites[suite]):
                sel.append(suite)
            else:
                sel += [f"{suite}.{c}" for c in left]
        return sel

    def add_boot(self, channel, console, timed_out, limit, tokens, selection=None):
        """Fold one boot's channels in; return True if it made progress.
        selection: the selectors (pending()) the boot ran, if not all; a
        case outside it is not this boot's to fail."""
        before = sum(len(c) for c in self.cases.values())
        ran = lambda suite, case: (selection is None or suite in selection
                                   or f"{suite}.{case}" in selection)
        done_suites, notes, done = read_channel(channel, tokens)
        lines = [l.rstrip("\r") for l in console.splitlines()]
        self.this_boot = set()
        expected = dict(self.plan)
        # /init says "done" and reboots: a run stopped by a panic cannot
        # have said it, and one stopped by the time limit may not have.
        if done and any(PANIC in l for l in lines):
            self._void([f"the results channel says the run finished, but the kernel log "
                        f"ends in a panic: \"{next(l for l in lines if PANIC in l).strip()}\""], ran)
            done_suites, done = {}, False
        elif done and timed_out:
            done = False
        # Past a dirty mark, the kernel is not one to run more cases in.
        dirty = next((i for i, l in enumerate(lines) if DIRTY in l or LOCKDEP.search(l)), None)
        for note in notes:
            # In a dirty kernel, a module's load fails for what was left.
            if "failed" in note and dirty is None:
                self.notes.append(explained(note))
        if any(TAMPERED in l for l in lines):
            why = (f"{TAMPERED[7:]} while they ran (the kit's cases are not the "
                   "driver's to change): no result of this run counts")
            self.notes.append(why)
            done_suites = {}
            for suite, cases in self.plan:
                for c in cases:
                    if ran(suite, c):
                        self.cases[suite].setdefault(c, Case(c, FAILED, [why]))
        for suite, text in done_suites.items():
            if suite not in expected:
                self.notes.append(f"unexpected suite {suite} in the results: ignored, and flagged")
                continue
            try:
                _name, cases = ktap.parse_suite(text)
            except ktap.KtapError as e:
                cases = [Case(c, FAILED, [f"the suite's results were malformed: {e}"])
                         for c in expected[suite]]
            # Every case the kit's sources list reports once: a case the kit
            # does not have, or one reported twice, means the suite's results
            # were tampered with, and none of them count.
            names = [case.name for case in cases]
            odd = sorted({n for n in names if n not in expected[suite] or names.count(n) > 1})
            if odd:
                why = (f"the suite reported {', '.join(odd)} "
                       f"{'more than once or ' if any(names.count(n) > 1 for n in odd) else ''}"
                       "beyond the kit's cases: its results cannot be trusted")
                self.notes.append(f"{suite}: {why}")
                cases = [Case(c, FAILED, [why]) for c in expected[suite]]
            forged = contradicted(suite, cases, lines)
            if forged:
                self._void(forged, ran)
                break
            for case in cases:
                if case.name not in self.cases[suite]:
                    self.cases[suite][case.name] = case
                    self.this_boot.add((suite, case.name))
            self._charge_health(suite, lines)
        # Reports after a dirty mark that has cases to run again (a module
        # load failing in the dirty kernel) are that kernel's, not a case's.
        redo = dirty is not None and self._forget_after(lines, dirty)
        if done:
            self._charge_strays(lines[:dirty] if redo else lines)
        if not done:
            self._crashed(lines, timed_out, limit, set(done_suites), ran)
        elif dirty is None:
            # A finished boot that left a case out lost it. A suite that
            # started lost the case's result line (a log past KUnit's 4 KiB
            # a case); one that never did was not run, if a module load
            # failed.
            load = [n for n in notes if n.startswith("insmod ")]
            for suite, cases in self.plan:
                started = ktap.console_suite(lines, suite)[0]
                why = (f"not run: {load[0]} (its init returned an error; see the console log)"
                       if load and not started else ktap.LOST)
                for c in cases:
                    if c not in self.cases[suite] and ran(suite, c):
                        self.cases[suite][c] = Case(c, FAILED, [why])
        return sum(len(c) for c in self.cases.values()) > before

    def _void(self, evidence, ran):
        """The results channel and the kernel log disagree: a module
        changed the results. Nothing this boot reported counts, the lab's
        cases fail, and the instructor is shown the evidence."""
        why = ("the results were forged (the kernel log shows what the results channel "
               "denies), so no result of this run counts and the submission is flagged")
        self.flags += [e for e in evidence if e not in self.flags]
        self.notes.append(f"flagged: {why}: {evidence[0]}")
        for s, c in self.this_boot:
            self.cases[s].pop(c, None)
        for suite, cases in self.plan:
            for c in cases:
                if ran(suite, c):
                    self.cases[suite][c] = Case(c, FAILED, [why] + evidence[:5])
        self.this_boot = set()

    def _spans(self, lines):
        """[(first, end, suite)]: each suite's span of the console, for the
        suites that started."""
        spans = []
        for suite, _cases in self.plan:
            started, _finished, _seen, (a, b) = ktap.console_suite(lines, suite)
            if started:
                spans.append((a, b, suite))
        return spans

    def _forget_after(self, lines, dirty):
        """The console's line dirty says the kernel is not fit for more
        cases: a module exit left a name registered (an init that registers
        it again fails), or lockdep reported and switched itself off. Every
        case this boot ran after the one running then ran in such a kernel:
        forget their results, so that they run again in a fresh one."""
        order = [(a + i, suite, name) for a, b, suite in self._spans(lines)
                 for i, _n, name in ktap.case_lines(lines[a:b])]
        later = sorted(o for o in order if o[0] > dirty)[1:]
        for _i, suite, name in later:
            if (suite, name) in self.this_boot:
                self.cases[suite].pop(name, None)
        what = (lines[dirty].split(DIRTY, 1)[1].strip() if DIRTY in lines[dirty] else
                "lockdep reported a problem and turned itself off")
        note = f"{what}; the cases after it ran again in a fresh kernel"
        if note not in self.notes:
            self.notes.append(note)
        return bool(later)

    def _report(self, suite, report):
        """Keep a report of the suite's health, up to MAX_REPORTS."""
        kept = self.health.setdefault(suite, [])
        if len(kept) < MAX_REPORTS:
            kept.append(report)
        elif len(kept) == MAX_REPORTS:
            kept.append([f"(more reports followed; the first {MAX_REPORTS} are shown)"])

    def _charge_strays(self, lines):
        """A report outside every suite's span of the console (a module's
        load or unload, or a span moved by a forged "# Subtest:" line)
        fails the suite that started last before it, or the first."""
        spans = self._spans(lines)
        for at, report in ktap.located_reports(lines):
            if any(a <= at < b for a, b, _suite in spans):
                continue
            before = [suite for a, _b, suite in sorted(spans) if a < at]
            suite = before[-1] if before else self.plan[0][0]
            self._report(suite, report)

    def _charge_health(self, suite, lines):
        """Charge each kernel report in the suite's span of the console to
        the case that was running when it appeared: the first whose result
        line follows it. A report outside every case (the suite's own setup
        or teardown), or in a span whose case lines are not the orderly ones
        KUnit prints (a driver can print such lines too), fails the suite."""
        _started, _finished, _cases, (a, b) = ktap.console_suite(lines, suite)
        span = lines[a:b]
        marks = ktap.case_lines(span)
        planned = dict(self.plan)[suite]
        orderly = ([n for _i, n, _name in marks] == list(range(1, len(marks) + 1))
                   and all(name in planned for _i, _n, name in marks)
                   and len({name for _i, _n, name in marks}) == len(marks))
        for at, report in ktap.located_reports(span):
            running = next((name for i, _n, name in marks if i > at), None) if orderly else None
            if running is None:
                self._report(suite, report)
                continue
            why = "the kernel reported a problem while this case ran:"
            context = ktap.report_context(report)
            report = [context] + report if context else report
            case = self.cases[suite].get(running)
            if case is None or case.status == PASSED:
                self.cases[suite][running] = Case(running, FAILED, [why] + report)
                self.this_boot.add((suite, running))
            elif len(case.log) < REPORT_LINES:
                case.log += [why] + report

    def _crashed(self, lines, timed_out, limit, reported, ran):
        """Blame the case the console shows running. Results printed before
        it are not credited (the driver could have printed them): the other
        cases run again in a fresh boot."""
        why = f"the run timed out after {limit:.0f} s" if timed_out else "the kernel stopped the run"
        excerpt = ktap.health_reports(lines)
        tail = excerpt[0] if excerpt else lines[-15:]
        for suite, cases in self.plan:
            if suite in reported:
                continue
            started, finished, seen, _span = ktap.console_suite(lines, suite)
            if not started:
                continue
            left = [c for c in cases if c not in self.cases[suite] and ran(suite, c)]
            if finished:
                self._charge_health(suite, lines)
                continue
            ran = {case.name for case in seen}
            # If the console claims every case ran, it was forged: blame the first.
            crashed = next((c for c in left if c not in ran), left[0] if left else None)
            if crashed:
                context = ktap.report_context(tail)
                self.cases[suite][crashed] = Case(crashed, CRASHED,
                                                  [f"{why}:"] + ([context] if context else []) + tail)
            return
        # Nothing was running a test: the crash came before or after them.
        self.notes.append(f"{why} outside any test case")
        for suite, cases in self.plan:
            for c in cases:
                if ran(suite, c):
                    self.cases[suite].setdefault(c, Case(c, CRASHED, [f"{why} outside any test case:"] + tail))

    def settle(self, pairs, why):
        """Fail these (suite, case) pairs without running them, saying why."""
        for suite, case in pairs:
            self.cases[suite].setdefault(case, Case(case, FAILED, [f"not run: {why}"]))

    def give_up(self, why, suites=None):
        """Fail every case (of suites, or of all) that has no result yet,
        saying why."""
        self.notes.append(why)
        for suite, cases in self.plan:
            for c in cases if suites is None or suite in suites else ():
                self.cases[suite].setdefault(c, Case(c, FAILED, [f"not run: {why}"]))

    def crashed_suites(self):
        """{suite: number of its cases that crashed or timed out}."""
        return {s: sum(c.status == CRASHED for c in cases.values())
                for s, cases in self.cases.items()}

    def counts(self):
        n = {PASSED: 0, FAILED: 0, SKIPPED: 0}
        for suite, cases in self.plan:
            for c in cases:
                st = self.cases[suite][c].status
                n[PASSED if st == PASSED else SKIPPED if st == SKIPPED else FAILED] += 1
            if suite in self.health:
                n[FAILED] += 1
        return n


def report_lines(outcome, home=lambda line: line):
    """A run's results as kunit.py prints them, a line a case, then the
    harness's notes; each message passed through home() (paths the way the
    reader knows them). The student's terminal and the grade's report.txt
    both show this."""
    lines = []
    for suite, cases in outcome.plan:
        lines.append(f"{'=' * 12} {suite} ({len(cases)} cases) {'=' * 12}")
        bad = False
        for c in cases:
            case = outcome.cases[suite].get(c)
            lines.append(f"[{case.status}] {c}")
            if case.status == SKIPPED and case.log:
                lines.append(f"    {home(case.log[0])}")
            if case.status in (FAILED, CRASHED):
                bad = True
                lines += [f"    {home(line)}" for line in case.log]
        if suite in outcome.health:
            bad = True
            lines.append(f"[FAILED] kernel health: the kernel reported a problem while {suite} ran")
            lines += [f"    {home(line)}" for report in outcome.health[suite] for line in report]
        lines.append(f"{'=' * 12} [{'FAILED' if bad else 'PASSED'}] {suite} {'=' * 12}")
    lines += [f"kdkit: {note}" for note in outcome.notes]
    return lines
