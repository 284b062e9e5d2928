"""Folding boots into results: crashes, timeouts, reruns, forged or lost output."""
import pytest

from harness import ktap, results
from harness.ktap import CRASHED, FAILED, PASSED

PLAN = [("alpha", ["a1", "a2"]), ("beta", ["b1", "b2", "b3"])]
SECRET = [f"{i:016x}" for i in range(100)]      # the run's one-time tokens


def suite_ktap(name, cases):
    lines = ["KTAP version 1", "1..1", "    KTAP version 1", f"    # Subtest: {name}", f"    1..{len(cases)}"]
    lines += [f"    {'ok' if ok else 'not ok'} {i} {c}" for i, (c, ok) in enumerate(cases, 1)]
    return "\n".join(lines + [f"ok 1 {name}"]) + "\n"


def channel(*suites, done=True, secret=SECRET, end=True, notes=()):
    """What /init writes on the results channel: markers with the run's
    tokens, one each, in order."""
    tokens = iter(secret)
    k = lambda: f"kdkit: {next(tokens)}"
    out = [f"{k()} group 1 begin"]
    for name, cases in suites:
        out += [f"{k()} suite {name}", suite_ktap(name, cases).rstrip("\n"), f"{k()} end suite {name}"]
    out += [f"{k()} {n}" for n in notes]
    out += ([f"{k()} group 1 end"] if end else []) + ([f"{k()} done"] if done else [])
    return "\n".join(out) + "\n"


def test_a_clean_boot_reports_every_case():
    o = results.Outcome(PLAN)
    ch = channel(("alpha", [("a1", True), ("a2", False)]),
                 ("beta", [("b1", True), ("b2", True), ("b3", True)]))
    assert o.add_boot(ch, "kdkit: group 1 begin\n", False, 60, SECRET)
    assert o.pending() == []
    assert o.cases["alpha"]["a2"].status == FAILED
    assert o.counts() == {PASSED: 4, FAILED: 1, "SKIPPED": 0}


def test_a_crash_blames_the_running_case_and_reruns_the_rest():
    o = results.Outcome(PLAN)
    console = """kdkit: group 1 begin
    # Subtest: alpha
    ok 1 a1
    ok 2 a2
ok 1 alpha
    # Subtest: beta
    ok 1 b1
BUG: kernel NULL pointer dereference, address: 0000000000000000
Call Trace:
 b2_fn+0x1/0x2
"""
    o.add_boot(channel(done=False, end=False), console, False, 60, SECRET)
    assert o.cases["beta"]["b2"].status == CRASHED
    assert "BUG: kernel NULL pointer dereference" in "\n".join(o.cases["beta"]["b2"].log)
    # What the console said passed is not taken: it runs again.
    assert o.pending() == ["alpha", "beta.b1", "beta.b3"]
    o.add_boot(channel(("alpha", [("a1", True), ("a2", True)]), ("beta", [("b1", True), ("b3", True)])),
               "kdkit: group 1 begin\nkdkit: group 1 end\n", False, 60, SECRET)
    assert o.pending() == []
    assert o.counts()[FAILED] == 1


def test_a_timeout_says_so():
    o = results.Outcome(PLAN)
    console = "kdkit: group 1 begin\n    # Subtest: alpha\n"
    o.add_boot("", console, True, 60, SECRET)
    assert o.cases["alpha"]["a1"].status == CRASHED
    assert "timed out after 60 s" in o.cases["alpha"]["a1"].log[0]


def test_a_crash_outside_the_tests_fails_everything_left():
    o = results.Outcome(PLAN)
    o.add_boot("", "Kernel panic - not syncing: boom\n", False, 60, SECRET)
    assert o.pending() == []
    assert all(c.status == CRASHED for s in o.cases.values() for c in s.values())


def test_unexpected_cases_and_suites_are_not_trusted():
    o = results.Outcome(PLAN)
    ch = channel(("alpha", [("a1", True), ("a2", True), ("forged", True)]),
                 ("gamma", [("g1", True)]),
                 ("beta", [("b1", True), ("b2", True), ("b3", True)]))
    o.add_boot(ch, "", False, 60, SECRET)
    assert "forged" not in o.cases["alpha"]
    assert any("unexpected suite gamma" in n and "flagged" in n for n in o.notes)
    # A case the kit does not have: none of that suite's results count.
    assert [o.cases["alpha"][c].status for c in ("a1", "a2")] == [FAILED, FAILED]
    assert any("alpha: the suite reported forged beyond the kit's cases" in n for n in o.notes)
    assert o.counts()[PASSED] == 3


def test_a_case_reported_twice_fails_its_suite():
    o = results.Outcome(PLAN)
    ch = channel(("alpha", [("a1", False), ("a1", True), ("a2", True)]),
                 ("beta", [("b1", True), ("b2", True), ("b3", True)]))
    o.add_boot(ch, "", False, 60, SECRET)
    assert [o.cases["alpha"][c].status for c in ("a1", "a2")] == [FAILED, FAILED]
    assert "more than once" in o.cases["alpha"]["a1"].log[0]


def test_markers_without_the_secret_are_the_module_s_own():
    """A module that writes KTAP with markers on the channel cannot know
    the boot's secret: its blocks are not results."""
    o = results.Outcome(PLAN)
    forged = channel(("alpha", [("a1", True), ("a2", True)]),
                     ("beta", [("b1", True), ("b2", True), ("b3", True)]),
                     secret=[f"{i:016x}" for i in range(1000, 1100)])
    o.add_boot(forged + channel(done=True), "", False, 60, SECRET)
    assert o.counts()[PASSED] == 0


def test_tokens_read_back_from_the_channel_are_spent():
    """A module that reads the tokens /init already wrote (the serial
    port's buffers hold them) and writes results with them after the real
    ones: a spent token marks nothing."""
    o = results.Outcome(PLAN)
    real = channel(("alpha", [("a1", False), ("a2", False)]),
                   ("beta", [("b1", False), ("b2", False), ("b3", False)]), done=False)
    forged = channel(("alpha", [("a1", True), ("a2", True)]),
                     ("beta", [("b1", True), ("b2", True), ("b3", True)]))
    o.add_boot(real + forged, "", False, 60, SECRET)
    assert o.counts()[PASSED] == 0


def test_a_missing_case_in_a_finished_boot_fails():
    o = results.Outcome(PLAN)
    ch = channel(("alpha", [("a1", True)]), ("beta", [("b1", True), ("b2", True), ("b3", True)]))
    o.add_boot(ch, "", False, 60, SECRET)
    assert o.cases["alpha"]["a2"].status == FAILED
    assert "no result" in o.cases["alpha"]["a2"].log[0]


def test_a_lost_result_line_is_not_blamed_on_a_failed_module_load():
    # beta's module (the userspace suites') failed to load; alpha ran, and
    # a2's result line was lost.
    o = results.Outcome(PLAN)
    ch = channel(("alpha", [("a1", True)]), notes=["insmod beta.ko failed"])
    o.add_boot(ch, "    # Subtest: alpha\n    ok 1 a1\nok 1 alpha\n", False, 60, SECRET)
    assert "no result" in o.cases["alpha"]["a2"].log[0]
    assert "not run: insmod beta.ko failed" in o.cases["beta"]["b1"].log[0]


def boot_with(console):
    o = results.Outcome(PLAN)
    ch = channel(("alpha", [("a1", True), ("a2", True)]),
                 ("beta", [("b1", True), ("b2", True), ("b3", True)]))
    o.add_boot(ch, console, False, 60, SECRET)
    return o


def test_a_report_fails_the_case_that_was_running_and_no_other():
    o = boot_with("""kdkit: group 1 begin
    # Subtest: alpha
    ok 1 a1
WARNING: CPU: 0 PID: 9 at lab.c:3 f+0x1/0x2
    ok 2 a2
ok 1 alpha
    # Subtest: beta
    ok 1 b1
    ok 2 b2
    ok 3 b3
ok 2 beta
kdkit: group 1 end
""")
    assert o.health == {}
    assert o.cases["alpha"]["a1"].status == PASSED
    assert o.cases["alpha"]["a2"].status == FAILED
    assert "while this case ran" in o.cases["alpha"]["a2"].log[0]
    assert "WARNING: CPU: 0" in o.cases["alpha"]["a2"].log[1]
    assert o.counts()[FAILED] == 1


def test_a_report_outside_every_case_fails_the_suite():
    o = boot_with("""kdkit: group 1 begin
    # Subtest: alpha
    ok 1 a1
    ok 2 a2
WARNING: CPU: 0 PID: 9 at lab.c:3 f+0x1/0x2
ok 1 alpha
    # Subtest: beta
    ok 1 b1
    ok 2 b2
    ok 3 b3
ok 2 beta
kdkit: group 1 end
""")
    assert "alpha" in o.health and "beta" not in o.health
    assert o.counts()[FAILED] == 1


def test_forged_case_lines_make_a_report_the_suites():
    # The driver prints a2's line early to move the blame onto it.
    o = boot_with("""    # Subtest: alpha
    ok 1 a1
    ok 2 a2
WARNING: CPU: 0 PID: 9 at lab.c:3 f+0x1/0x2
    ok 2 a2
ok 1 alpha
""")
    assert "alpha" in o.health


def test_an_unknown_report_with_a_call_trace_counts():
    o = boot_with("""    # Subtest: alpha
    ok 1 a1
INFO: trying to register non-static key.
The code is fine but needs lockdep annotation, or maybe
you didn't initialize this object before use?
turning off the locking correctness validator.
CPU: 0 PID: 61 Comm: kunit_try_catch Tainted: G           O       6.1.192 #1
Call Trace:
 <TASK>
 dump_stack_lvl+0x45/0x5d
 register_lock_class+0x6d8/0x6e0
 vser_read+0x4b/0x1d0 [vser_kunit]
 </TASK>
    ok 2 a2
ok 1 alpha
""")
    log = o.cases["alpha"]["a2"].log
    assert o.cases["alpha"]["a2"].status == FAILED
    assert any("vser_read+0x4b/0x1d0 [vser_kunit]" in l for l in log)
    assert any("INFO: trying to register non-static key." in l for l in log)


def test_a_device_model_that_stops_qemu_crashes_the_running_case():
    # What runner.boot_once appends when QEMU exits with a hardware error.
    o = results.Outcome(PLAN)
    console = ("kdkit: group 1 begin\n    # Subtest: alpha\n    ok 1 a1\n\n"
               "qemu: hardware error: EDU: DMA range 0x40000-0x40fff out of bounds!\n")
    o.add_boot("", console, False, 60, SECRET)
    assert o.cases["alpha"]["a2"].status == CRASHED
    assert any("EDU: DMA range" in l for l in o.cases["alpha"]["a2"].log)
    assert o.pending() == ["alpha.a1", "beta"]


def test_ktap_lines_a_driver_prints_never_count():
    # A driver prints passes for every case, then crashes the kernel.
    o = results.Outcome(PLAN)
    forged = "".join(f"    ok {i} {c}\n" for i, c in enumerate(["b1", "b2", "b3"], 1))
    console = ("kdkit: group 1 begin\n    # Subtest: alpha\n    ok 1 a1\n    ok 2 a2\nok 1 alpha\n"
               "    # Subtest: beta\n" + forged + "Kernel panic - not syncing: Fatal exception\n")
    assert o.add_boot("", console, False, 60, SECRET)
    assert all(c.status != PASSED for cases in o.cases.values() for c in cases.values())
    assert o.cases["beta"]["b1"].status == CRASHED
    assert o.pending() == ["alpha", "beta.b2", "beta.b3"]


def test_cases_the_module_changed_while_they_ran_count_for_nothing():
    o = results.Outcome(PLAN)
    ch = channel(("alpha", [("a1", True), ("a2", True)]),
                 ("beta", [("b1", True), ("b2", True), ("b3", True)]))
    console = "kdkit: group 1 begin\nkdkit: the test module changed its own test cases\n"
    o.add_boot(ch, console, False, 60, SECRET)
    assert o.pending() == [] and o.counts()[PASSED] == 0
    assert "changed its own test cases" in o.notes[-1]


def test_cases_after_an_exit_that_left_a_name_run_again_in_a_fresh_kernel():
    o = boot_with("""kdkit: group 1 begin
    # Subtest: alpha
kdkit: the kernel is left dirty: module exit left class vser registered
    ok 1 a1
    ok 2 a2
ok 1 alpha
    # Subtest: beta
    ok 1 b1
    ok 2 b2
    ok 3 b3
ok 2 beta
kdkit: group 1 end
kdkit: done
""")
    # a1's exit left it: a1 keeps its result, every later case runs again.
    assert set(o.cases["alpha"]) == {"a1"} and o.cases["beta"] == {}
    assert o.pending() == ["alpha.a2", "beta"]
    assert any("module exit left class vser registered" in n for n in o.notes)


def test_cases_after_a_lockdep_report_run_again_with_lockdep_on():
    o = boot_with("""    # Subtest: alpha
    ok 1 a1
WARNING: possible recursive locking detected
    ok 2 a2
ok 1 alpha
    # Subtest: beta
    ok 1 b1
    ok 2 b2
    ok 3 b3
ok 2 beta
kdkit: done
""")
    assert o.cases["alpha"]["a2"].status == FAILED
    assert o.cases["beta"] == {}
    assert any("lockdep" in n for n in o.notes)


def test_a_report_outside_every_suite_is_not_lost():
    # A use after free at the module's unload, after the last suite; and
    # one before a forged "# Subtest:" line that moves alpha's span.
    o = boot_with("""    # Subtest: alpha
    ok 1 a1
BUG: KASAN: use-after-free in vser_read+0x10/0x20 [vser_kunit]
    # Subtest: alpha
    ok 2 a2
ok 1 alpha
    # Subtest: beta
    ok 1 b1
    ok 2 b2
    ok 3 b3
ok 2 beta
kdkit: group 1 end
WARNING: CPU: 0 PID: 9 at lab.c:3 vser_exit+0x1/0x2
kdkit: done
""")
    quoted = [l for reports in o.health.values() for r in reports for l in r]
    assert "BUG: KASAN: use-after-free in vser_read+0x10/0x20 [vser_kunit]" in quoted
    assert "WARNING: CPU: 0 PID: 9 at lab.c:3 vser_exit+0x1/0x2" in quoted
    assert o.counts()[FAILED] >= 1


def test_a_report_from_the_dirty_kernel_is_not_charged_when_its_cases_run_again():
    # vser's exit left its class; the module loaded after it warns about
    # the duplicate name, outside every case: its suites run again.
    o = boot_with("""    # Subtest: alpha
kdkit: the kernel is left dirty: module exit left class vser registered
    ok 1 a1
    ok 2 a2
ok 1 alpha
sysfs: cannot create duplicate filename '/class/vser'
Call Trace:
 __class_register+0xd4/0x132
    # Subtest: beta
    ok 1 b1
    ok 2 b2
    ok 3 b3
ok 2 beta
kdkit: done
""")
    assert o.health == {}
    assert o.pending() == ["alpha.a2", "beta"]


def test_a_crash_from_a_kernel_thread_says_an_earlier_case_may_have_set_it_off():
    o = results.Outcome(PLAN)
    console = """kdkit: group 1 begin
    # Subtest: alpha
    ok 1 a1
BUG: KASAN: use-after-free in vser_timer_fn+0x10/0x20 [vser_kunit]
CPU: 1 PID: 0 Comm: swapper/1 Tainted: G O 6.1.192 #1
Call Trace:
 <IRQ>
 vser_timer_fn+0x10/0x20 [vser_kunit]
 call_timer_fn+0x20/0x100
"""
    o.add_boot(channel(done=False, end=False), console, False, 60, SECRET)
    log = o.cases["alpha"]["a2"].log
    assert o.cases["alpha"]["a2"].status == CRASHED
    assert "came from an interrupt, not from the case's own thread" in log[1]
    assert "use-after-free" in "\n".join(log)


def test_a_crash_in_the_cases_own_thread_adds_no_such_note():
    report = ["BUG: kernel NULL pointer dereference", "CPU: 0 PID: 40 Comm: kunit_try_catch",
              "Call Trace:", " <TASK>", " vser_read+0x1/0x2"]
    assert ktap.report_context(report) is None
    assert "kworker/0:1" in ktap.report_context(["CPU: 0 PID: 9 Comm: kworker/0:1 Tainted: G", "Call Trace:"])
    # A soft lockup is reported from the watchdog's timer, about the case.
    assert ktap.report_context(["watchdog: BUG: soft lockup - CPU#0 stuck for 6s! [kunit_try_catch:57]",
                                "CPU: 0 PID: 57 Comm: kunit_try_catch", "Call Trace:", " <IRQ>",
                                " watchdog_timer_fn+0x1bb/0x1c8"]) is None


def test_a_failed_unload_says_what_it_means():
    note = results.explained("rmmod vser_kunit failed: Resource temporarily unavailable")
    assert note.startswith("rmmod vser_kunit failed: Resource temporarily unavailable (")
    assert "a file left open" in note
    assert results.explained("insmod x.ko failed") == "insmod x.ko failed"


def test_a_plan_of_some_cases_selects_them_one_by_one():
    o = results.Outcome([("beta", ["b2"])], PLAN)
    assert o.pending() == ["beta.b2"]
    assert results.Outcome(PLAN).pending() == ["alpha", "beta"]


FAILING_CONSOLE = """kdkit: group 1 begin
    # Subtest: alpha
    # a1: EXPECTATION FAILED at kunit/lab/lab_test.c:12
    Expected x == 1, but
    ok 1 a1
    ok 2 a2
ok 1 alpha
    # Subtest: beta
    ok 1 b1
    ok 2 b2
    ok 3 b3
ok 2 beta
kdkit: group 1 end
"""


@pytest.mark.parametrize("console, says", [
    # A driver reset the case's status before KUnit printed it (the check's
    # own line was already out).
    (FAILING_CONSOLE, '"# a1: EXPECTATION FAILED at kunit/lab/lab_test.c:12"'),
    # A driver rewrote "not ok" into "ok" in the debugfs log after the case.
    (FAILING_CONSOLE.replace("    # a1: EXPECTATION FAILED at kunit/lab/lab_test.c:12\n"
                             "    Expected x == 1, but\n    ok 1 a1", "    not ok 1 a1"),
     '"not ok 1 a1"'),
    # A driver wrote results of its own on the channel; KUnit never ran a1.
    (FAILING_CONSOLE.replace("    # a1: EXPECTATION FAILED at kunit/lab/lab_test.c:12\n"
                             "    Expected x == 1, but\n    ok 1 a1\n", ""),
     "has no result for it"),
])
def test_results_the_kernel_log_denies_void_the_run_and_flag_it(console, says):
    o = boot_with(console)
    assert o.flags and says in o.flags[0] and o.flags[0].startswith("alpha.a1: reported passed")
    assert o.counts() == {PASSED: 0, FAILED: 5, "SKIPPED": 0}
    assert all("forged" in c.log[0] for s in o.cases.values() for c in s.values())
    assert any(n.startswith("flagged: ") for n in o.notes)


def test_a_failure_the_results_report_is_no_evidence():
    o = results.Outcome(PLAN)
    ch = channel(("alpha", [("a1", False), ("a2", True)]),
                 ("beta", [("b1", True), ("b2", True), ("b3", True)]))
    o.add_boot(ch, FAILING_CONSOLE.replace("    ok 1 a1", "    not ok 1 a1"), False, 60, SECRET)
    assert o.flags == [] and o.counts()[PASSED] == 4


def test_a_log_that_lost_lines_proves_no_absence():
    o = boot_with(FAILING_CONSOLE.replace(
        "    # a1: EXPECTATION FAILED at kunit/lab/lab_test.c:12\n    Expected x == 1, but\n"
        "    ok 1 a1\n", "** 12 printk messages dropped **\n"))
    assert o.flags == [] and o.counts()[PASSED] == 5


def test_a_flood_of_reports_keeps_a_bounded_few():
    """Thousands of reports outside every case (a driver's timer warning
    each tick) keep MAX_REPORTS and a line saying more followed."""
    report = "WARNING: CPU: 0 PID: 9 at lab.c:3 f+0x1/0x2\n" + "x\n" * 3
    o = boot_with("kdkit: group 1 begin\n" + report * 3000 + FAILING_CONSOLE.split("\n", 1)[1]
                  .replace("    # a1: EXPECTATION FAILED at kunit/lab/lab_test.c:12\n    Expected x == 1, but\n", ""))
    kept = o.health["alpha"]
    assert len(kept) == results.MAX_REPORTS + 1 and "more reports followed" in kept[-1][0]


def test_a_suite_started_twice_in_one_run_was_forged():
    """A module that printed a whole run of its own beside the real one."""
    o = boot_with(FAILING_CONSOLE.replace(
        "    # a1: EXPECTATION FAILED at kunit/lab/lab_test.c:12\n    Expected x == 1, but\n", "")
        + "    # Subtest: beta\n    ok 1 b1\n    ok 2 b2\n    ok 3 b3\nok 2 beta\n")
    assert o.flags == ["beta: the kernel log shows the suite starting 2 times in one run"]
    assert o.counts()[PASSED] == 0


def test_a_run_that_says_done_and_panics_was_forged():
    console = FAILING_CONSOLE.replace(
        "    # a1: EXPECTATION FAILED at kunit/lab/lab_test.c:12\n    Expected x == 1, but\n", "")
    o = boot_with(console + "Kernel panic - not syncing: stopped after forging\n")
    assert o.flags and "ends in a panic" in o.flags[0]
    assert o.counts()[PASSED] == 0


def test_a_run_that_says_done_and_times_out_is_not_taken_as_finished():
    o = results.Outcome(PLAN)
    ch = channel(("alpha", [("a1", True), ("a2", True)]),
                 ("beta", [("b1", True), ("b2", True), ("b3", True)]))
    console = FAILING_CONSOLE.replace(
        "    # a1: EXPECTATION FAILED at kunit/lab/lab_test.c:12\n    Expected x == 1, but\n", "")
    o.add_boot(ch, console, True, 60, SECRET)
    assert o.flags == [] and o.counts()[PASSED] == 5
    assert "the run timed out after 60 s outside any test case" in o.notes


def test_a_skipped_case_says_why():
    o = results.Outcome([("alpha", ["a1"])])
    ch = channel().replace(f"kdkit: {SECRET[1]} group 1 end", "\n".join([
        f"kdkit: {SECRET[1]} suite alpha", "KTAP version 1", "1..1", "    KTAP version 1",
        "    # Subtest: alpha", "    1..1", "    ok 1 a1 # SKIP one CPU only", "ok 1 alpha",
        f"kdkit: {SECRET[2]} end suite alpha", f"kdkit: {SECRET[3]} group 1 end"])).replace(
        f"kdkit: {SECRET[2]} done", f"kdkit: {SECRET[4]} done")
    o.add_boot(ch, "", False, 60, SECRET)
    assert results.report_lines(o)[1:3] == ["[SKIPPED] a1", "    skipped: one CPU only"]
