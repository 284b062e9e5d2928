"""Drivers that forge their results, written as a student who read the
grading code would: each scores nothing and is flagged to the instructor
with the evidence. KUnit prints each failed check and each case's result
on the kernel log as it happens; the results channel must agree with it.
These boot QEMU, so they need 'make setup' first."""
import os

import pytest

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
		/* Kept loaded, so that the timer never outlives the module. */
		__module_get(THIS_MODULE);
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


# ... or for a kworker, through a work item of its own.
SWITCHES_OFF_ELSEWHERE = """static void quiet(struct work_struct *w)
{
	current->kasan_depth++;
}

static DECLARE_WORK(quiet_work, quiet);

ssize_t hello_greet(char *buf, size_t size, const char *name)
{
	schedule_work(&quiet_work);
	flush_work(&quiet_work);
"""


@pytest.mark.parametrize("code, says", [
    (SWITCHES_OFF, ["KASAN was switched off for this thread",
                    "lockdep was switched off for this thread"]),
    (SWITCHES_OFF_ELSEWHERE, ["had the detectors switched off (KASAN's kasan_depth 1"]),
])
def test_a_driver_that_switches_the_detectors_off_fails_the_case(tmp_path, code, says):
    text = solution("hello")
    head = "ssize_t hello_greet(char *buf, size_t size, const char *name)\n{\n"
    assert head in text
    g = graded(tmp_path, "hello", "#include <linux/sched.h>\n#include <linux/workqueue.h>\n"
               + text.replace(head, code, 1), strict=True)
    said = "\n".join(l for lines in g.details.values() for l in lines)
    assert g.points < g.max_points, g.notes
    for line in says:
        assert line in said, said


# The attack that had full marks with no working driver: the marker /init
# writes on the results channel is read back from the serial port's
# transmit buffer (found through /init's open file 3, with no import);
# results of the driver's own follow, marked with it, then "done", and a
# restart ends the run before the real results come (kernel_restart() is
# refused by the object check; the instructor's switch lets it through, as
# another way to stop the machine would).
TOKEN_THIEF = r"""#include <linux/fdtable.h>
#include <linux/reboot.h>
#include <linux/sched/signal.h>
#include <linux/serial_core.h>
#include <linux/tty.h>

static struct tty_struct *results_channel(void)
{
	struct tty_struct *tty = NULL;
	struct task_struct *p;

	rcu_read_lock();
	for_each_process(p) {
		struct fdtable *fdt;
		struct file *f;

		if (!p->files)
			continue;
		fdt = files_fdtable(p->files);
		f = fdt->max_fds > 3 ? rcu_dereference_raw(fdt->fd[3]) : NULL;
		if (f && !strcmp(f->f_path.dentry->d_name.name, "ttyS1")) {
			tty = ((struct tty_file_private *)f->private_data)->tty;
			break;
		}
	}
	rcu_read_unlock();
	return tty;
}

static void put(struct tty_struct *tty, const char *mark, const char *text)
{
	char line[200];

	if (mark)
		snprintf(line, sizeof(line), "kdkit: %s %s\n", mark, text);
	else
		snprintf(line, sizeof(line), "%s\n", text);
	tty->ops->write(tty, line, strlen(line));
}

static void forge(void)
{
	static const char * const ktap[] = {
		"suite hello_greet", "KTAP version 1", "1..1", "    KTAP version 1",
		"    # Subtest: hello_greet", "    1..5", "    ok 1 hello_greet_formats_name",
		"    ok 2 hello_greet_null_name_returns_einval",
		"    ok 3 hello_greet_empty_name_returns_einval",
		"    ok 4 hello_greet_short_buffer_returns_enospc",
		"    ok 5 hello_greet_exact_fit_succeeds", "ok 1 hello_greet", "end suite hello_greet",
		"suite hello_module", "KTAP version 1", "1..1", "    KTAP version 1",
		"    # Subtest: hello_module", "    1..2", "    ok 1 hello_module_init_then_exit_succeeds",
		"    ok 2 hello_module_loads_twice", "ok 1 hello_module", "end suite hello_module",
		"group 1 end", "done",
	};
	struct tty_struct *tty = results_channel();
	char mark[40] = "", *buf, *p, *start;
	int i;

	if (!tty)
		return;
	buf = ((struct uart_state *)tty->driver_data)->xmit.buf;
	p = strnstr(buf, " group 1 begin", UART_XMIT_SIZE);
	if (!p)
		return;
	for (start = p; start > buf && start[-1] != ' '; start--)
		;
	memcpy(mark, start, min_t(size_t, p - start, sizeof(mark) - 1));
	for (i = 0; i < ARRAY_SIZE(ktap); i++)
		put(tty, strchr("sedg", ktap[i][0]) ? mark : NULL, ktap[i]);
	kernel_restart(NULL);
}

ssize_t hello_greet(char *buf, size_t size, const char *name)
{
	forge();
	return -EOPNOTSUPP;
}

static ssize_t hello_greet_unused(char *buf, size_t size, const char *name)
"""


def test_a_marker_read_back_from_the_serial_port_forges_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("KDKIT_ALLOW_IMPORTS", "kernel_restart")
    text = solution("hello")
    head = "ssize_t hello_greet(char *buf, size_t size, const char *name)\n"
    text = text.replace(head, TOKEN_THIEF, 1).replace("hello_greet(greeting", "hello_greet_unused(greeting")
    g = graded(tmp_path, "hello", text)
    # The stolen marker was spent: the forged lines mark nothing, and each
    # greet case stopped the run it was in; the entry points pass.
    assert (g.points, g.flags) == (3, []), g.notes
    channel = open(tmp_path / "out" / "student" / "hello" / "logs" / "results-1.log").read()
    assert "    ok 1 hello_greet_formats_name" in channel, "the thief wrote nothing"


def test_a_process_left_with_the_detectors_off_fails_its_case(tmp_path):
    """The userspace suite's processes run the driver outside any KUnit
    case: one that ends with KASAN switched off is reported on the kernel
    log as it exits, and its case fails."""
    text = solution("vser")
    head = "static int vser_open(struct inode *inode, struct file *filp)\n{\n"
    assert head in text
    text = text.replace(head, head + "\tif (!(current->flags & PF_KTHREAD))\n"
                        "\t\tcurrent->kasan_depth++;\n", 1)
    g = graded(tmp_path, "vser", text, strict=True)
    report = open(tmp_path / "out" / "student" / "vser" / "report.txt").read()
    assert g.points < g.max_points, g.notes
    assert "kdkit: the detectors were switched off: vser_user" in report, report[-3000:]
