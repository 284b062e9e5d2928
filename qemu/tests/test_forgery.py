"""Drivers that forge their results, written as a student who read the
grading code would: each scores nothing and is flagged to the instructor
with the evidence. KUnit prints each failed check and each case's result
on the kernel log as it happens; the results channel must agree with it.
These boot QEMU, so they need 'make setup' first."""
import os

from grader import grade
from harness import lab

KIT = lab.KIT


def solution(name):
    with open(os.path.join(KIT, "solutions", name, f"{name}.c")) as f:
        return f.read()


def graded(tmp_path, name, text, strict=False):
    sub = tmp_path / "submission"
    sub.mkdir()
    (sub / f"{name}.c").write_text(text)
    return grade.grade_lab("student", name, str(sub), str(tmp_path / "out"), strict)


# A timer of the student's rewrites every "not ok" into "ok" in the case
# logs the debugfs results are made of, and each case's status, while the
# suites run and until the module goes.
LOG_REWRITER = """#include <kunit/test.h>
#include <linux/timer.h>

static struct timer_list forge_timer;

static void forge_logs(struct timer_list *t)
{
	struct kunit_suite **suites = THIS_MODULE->kunit_suites;
	struct kunit_case *c;
	char *p;
	int i;

	if (THIS_MODULE->state == MODULE_STATE_GOING)
		return;
	for (i = 0; i < 2; i++)
		for (c = suites[i]->test_cases; c->run_case; c++) {
			c->status = KUNIT_SUCCESS;
			while (c->log && (p = strstr(c->log, "not ok ")))
				memmove(p, p + 4, strlen(p + 4) + 1);
		}
	mod_timer(&forge_timer, jiffies + 1);
}

ssize_t hello_greet(char *buf, size_t size, const char *name)
{
	if (!timer_pending(&forge_timer)) {
		timer_setup(&forge_timer, forge_logs, 0);
		mod_timer(&forge_timer, jiffies + 1);
	}
	return -EOPNOTSUPP;
}

static ssize_t hello_greet_unused(char *buf, size_t size, const char *name)
"""


def test_a_timer_that_rewrites_the_logs_scores_0_and_is_flagged(tmp_path):
    text = solution("hello")
    head = "ssize_t hello_greet(char *buf, size_t size, const char *name)\n"
    assert head in text
    text = text.replace(head, LOG_REWRITER, 1).replace("hello_greet(greeting", "hello_greet_unused(greeting")
    g = graded(tmp_path, "hello", text)
    assert g.points == 0, g.notes
    assert g.flags and "reported passed; the kernel log says" in g.flags[0], g.notes
    assert any(n.startswith("flagged: the results were forged") for n in g.notes), g.notes


# The driver's exit, which every case's clean-up calls, resets the running
# test's status and empties its log: the failures before it vanish.
STATUS_RESETTER = """#include <kunit/test.h>

static void __exit vser_exit(void)
{
	struct kunit *t = current->kunit_test;

	if (t) {
		t->status = KUNIT_SUCCESS;
		if (t->log)
			t->log[0] = '\\0';
	}
"""


def test_an_exit_that_resets_the_tests_status_scores_0_and_is_flagged(tmp_path):
    text = solution("vser")
    head = "static void __exit vser_exit(void)\n{\n"
    read = "\tret = kfifo_to_user(&vdev->fifo, buf, count, &copied);\n"
    assert head in text and read in text
    # The read loses every byte: the read cases fail before exit runs.
    text = text.replace(head, STATUS_RESETTER, 1).replace(
        read, read + "\tcopied = 0;\n", 1)
    g = graded(tmp_path, "vser", text)
    assert g.points == 0, g.notes
    assert g.flags and "EXPECTATION FAILED" in g.flags[0], g.notes


# KASAN's and lockdep's per-task switches are plain fields of the task:
# a driver can turn both off for the thread that tests it.
SWITCHES_OFF = """ssize_t hello_greet(char *buf, size_t size, const char *name)
{
	current->kasan_depth++;
	current->lockdep_recursion++;
"""


def test_a_driver_that_switches_the_detectors_off_fails_the_case(tmp_path):
    text = solution("hello")
    head = "ssize_t hello_greet(char *buf, size_t size, const char *name)\n{\n"
    assert head in text
    g = graded(tmp_path, "hello", "#include <linux/sched.h>\n" + text.replace(head, SWITCHES_OFF, 1),
               strict=True)
    said = "\n".join(l for lines in g.details.values() for l in lines)
    assert g.points < g.max_points, g.notes
    assert "KASAN was switched off for this thread" in said, said
    assert "lockdep was switched off for this thread" in said, said
