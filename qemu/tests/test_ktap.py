"""The KTAP parser: what KUnit's debugfs results look like, and what is refused."""
import pytest

from harness import ktap
from harness.ktap import FAILED, PASSED, SKIPPED

GOOD = """KTAP version 1
1..1
    KTAP version 1
    # Subtest: demo
    1..3
    ok 1 demo_passes
    # demo_fails: EXPECTATION FAILED at kunit/demo/demo_test.c:12
    Expected 1 == 2, but
        1 == 1

    not ok 2 demo_fails
    ok 3 demo_skips # SKIP not on this machine
# demo: pass:1 fail:1 skip:1 total:3
# Totals: pass:1 fail:1 skip:1 total:3
not ok 1 demo
"""


def test_parse_suite_reads_each_case_and_its_log():
    name, cases = ktap.parse_suite(GOOD)
    assert name == "demo"
    assert [(c.name, c.status) for c in cases] == [
        ("demo_passes", PASSED), ("demo_fails", FAILED), ("demo_skips", SKIPPED)]
    assert cases[1].log[0] == "# demo_fails: EXPECTATION FAILED at kunit/demo/demo_test.c:12"
    assert cases[0].log == []


def test_parse_suite_keeps_unindented_messages_in_the_case_log():
    # KUNIT_FAIL()'s message comes unindented after the "at file:line" line.
    _name, cases = ktap.parse_suite(GOOD.replace("    Expected 1 == 2, but", "Expected 1 == 2, but"))
    assert "Expected 1 == 2, but" in cases[1].log


def test_parse_suite_accepts_serial_line_endings():
    name, cases = ktap.parse_suite(GOOD.replace("\n", "\r\n"))
    assert name == "demo" and len(cases) == 3


@pytest.mark.parametrize("broken", [
    "",
    GOOD.replace("KTAP version 1\n1..1\n", "", 1),
    GOOD.replace("    ok 3 demo_skips", "    ok 4 demo_skips"),
    GOOD.replace("not ok 1 demo\n", ""),
    GOOD.replace("not ok 1 demo\n", "not ok 1 other\n"),
    GOOD.replace("    1..3", "    1..2"),
])
def test_parse_suite_refuses_what_kunit_does_not_write(broken):
    with pytest.raises(ktap.KtapError):
        ktap.parse_suite(broken)


def test_parse_suite_allows_a_lost_tail():
    # KUnit's per-case log is 512 bytes; a long one loses its result line.
    name, cases = ktap.parse_suite(GOOD.replace("    ok 3 demo_skips # SKIP not on this machine\n", ""))
    assert len(cases) == 2


CONSOLE = """random boot line
    KTAP version 1
    # Subtest: demo
    1..3
    ok 1 demo_passes
some driver: hello
    # demo_fails: EXPECTATION FAILED at x.c:1
    not ok 2 demo_fails
BUG: unable to handle page fault for address: 0000000000000008
#PF: supervisor read access in kernel mode
RIP: 0010:demo_crash+0x1/0x2
RSP: 0018:ffa00000000b3eb0 EFLAGS: 00000202
RAX: 0000000000000000 RBX: 6b6b6b6b6b6b6b6b RCX: ff1100000015d100
Call Trace:
 demo_crash+0x1/0x2
"""


def test_console_suite_reports_progress_of_an_unfinished_suite():
    started, finished, cases, (a, b) = ktap.console_suite(CONSOLE.splitlines(), "demo")
    assert started and not finished
    assert [(c.name, c.status) for c in cases] == [("demo_passes", PASSED), ("demo_fails", FAILED)]
    assert a == 2 and b == len(CONSOLE.splitlines())


def test_console_suite_of_a_suite_that_never_started():
    assert ktap.console_suite(CONSOLE.splitlines(), "other")[:2] == (False, False)


def test_health_reports_quote_the_report_without_registers_but_the_faulting_function():
    reports = ktap.health_reports(CONSOLE.splitlines())
    assert len(reports) == 1
    assert reports[0][0].startswith("BUG: unable to handle page fault")
    assert not any(line.startswith(("RAX:", "RSP:", "Code:")) for line in reports[0])
    assert any(line.startswith("RIP:") for line in reports[0])
    assert " demo_crash+0x1/0x2" in reports[0]


@pytest.mark.parametrize("line", [
    "WARNING: CPU: 0 PID: 1 at kunit/x.c:3 f+0x1/0x2",
    "BUG: KASAN: slab-use-after-free in vser_read+0x1/0x2",
    "kmemleak: 1 new suspected memory leaks (see /sys/kernel/debug/kmemleak)",
    "unreferenced object 0xffff888000 (size 64):",
    "DMA-API: platform edu: device driver failed to check map error",
    "WARNING: possible recursive locking detected",
    "watchdog: BUG: soft lockup - CPU#0 stuck for 6s! [insmod:1]",
    "INFO: task insmod:50 blocked for more than 5 seconds.",
])
def test_health_reports_find_every_detector(line):
    assert ktap.health_reports(["ok", line, "after"])


def test_health_reports_ignore_ordinary_lines():
    assert ktap.health_reports(["hello_kunit: Hello, world!", "    ok 1 warning_free"]) == []


def test_a_result_line_lost_to_an_overflowing_log_keeps_its_log_apart():
    _name, cases = ktap.parse_suite(GOOD.replace("    not ok 2 demo_fails\n", ""))
    by_name = {c.name: c for c in cases}
    assert sorted(by_name) == ["demo_fails", "demo_passes", "demo_skips"]
    # The lost case's messages stay with it, not with the case after it.
    assert by_name["demo_fails"].status == FAILED
    assert by_name["demo_fails"].log[0] == ktap.LOST
    assert "EXPECTATION FAILED" in by_name["demo_fails"].log[1]
    assert by_name["demo_skips"].log == ["skipped: not on this machine"]


@pytest.mark.parametrize("old, new", [("ok 3 demo_skips", "ok 2 demo_skips"),
                                      ("ok 3 demo_skips", "ok 4 demo_skips")])
def test_a_number_repeated_or_past_the_plan_is_refused(old, new):
    with pytest.raises(ktap.KtapError, match="out of order"):
        ktap.parse_suite(GOOD.replace(old, new))
