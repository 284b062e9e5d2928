// SPDX-License-Identifier: GPL-2.0
/*
 * The detectors stay on: KASAN and lockdep each have a per-task switch
 * (task_struct's kasan_depth, lockdep_recursion) that a module can reach
 * with a plain store, and lockdep a global one (debug_locks). A driver
 * that turned one off would hide its own bugs from the checks that grade
 * it. Every case of the test module is wrapped: the switches are read as
 * the case starts and again as it ends, in the case's own thread, and a
 * change fails the case and is undone; at the end of each case, any other
 * sleeping task found switched off (a work item's kworker) fails it too.
 * A process that exits switched off (a userspace suite's) is reported on
 * the kernel log, which fails the case that ran it.
 */
#include <linux/debug_locks.h>
#include <linux/hardirq.h>
#include <linux/kprobes.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <kunit/test.h>
#include "kdkit.h"

struct kdkit_switches {
	struct task_struct *task;
	unsigned int kasan_depth;
	unsigned int lockdep_recursion;
	int debug_locks;
};

#define KDKIT_MAX_SUITES 16

static struct kunit_suite **suites;
static int nr_suites;
static int (*suite_init[KDKIT_MAX_SUITES])(struct kunit *test);
static void (*suite_exit[KDKIT_MAX_SUITES])(struct kunit *test);
/* KUnit runs one case at a time. */
static struct kdkit_switches at_start;

static void kdkit_switches_read(struct kdkit_switches *s)
{
	s->task = current;
#if defined(CONFIG_KASAN_GENERIC) || defined(CONFIG_KASAN_SW_TAGS)
	s->kasan_depth = current->kasan_depth;
#endif
#ifdef CONFIG_LOCKDEP
	s->lockdep_recursion = current->lockdep_recursion;
#endif
	s->debug_locks = READ_ONCE(debug_locks);
}

/* The suite the running case belongs to: KUnit names a test by its case's name. */
static int kdkit_suite_of(struct kunit *test)
{
	struct kunit_case *c;
	int i;

	for (i = 0; i < nr_suites; i++)
		for (c = suites[i]->test_cases; c->run_case; c++)
			if (c->name == test->name)
				return i;
	return -1;
}

static int kdkit_case_init(struct kunit *test)
{
	int i = kdkit_suite_of(test);

	kdkit_switches_read(&at_start);
	return i >= 0 && suite_init[i] ? suite_init[i](test) : 0;
}

/* Whether @t has a detector switched off; puts it back if so. */
static bool kdkit_switched_off(struct task_struct *t, unsigned int *kasan, unsigned int *lockdep)
{
	*kasan = 0;
	*lockdep = 0;
#if defined(CONFIG_KASAN_GENERIC) || defined(CONFIG_KASAN_SW_TAGS)
	*kasan = t->kasan_depth;
	t->kasan_depth = 0;
#endif
#ifdef CONFIG_LOCKDEP
	*lockdep = t->lockdep_recursion;
	t->lockdep_recursion = 0;
#endif
	return *kasan || *lockdep;
}

/* Other tasks, off every CPU (none is inside the detectors' own code then). */
static void kdkit_check_others(struct kunit *test)
{
	struct task_struct *g, *t;
	unsigned int kasan, lockdep;

	rcu_read_lock();
	for_each_process_thread(g, t) {
		if (t == current || READ_ONCE(t->__state) == TASK_RUNNING)
			continue;
#ifdef CONFIG_SMP
		if (READ_ONCE(t->on_cpu))
			continue;
#endif
		if (!(IS_ENABLED(CONFIG_KASAN) || IS_ENABLED(CONFIG_LOCKDEP)) ||
		    !kdkit_switched_off(t, &kasan, &lockdep))
			continue;
		KUNIT_FAIL(test,
			   "the task %s (pid %d) had the detectors switched off (KASAN's kasan_depth %u, lockdep's lockdep_recursion %u): the tests need them on",
			   t->comm, t->pid, kasan, lockdep);
	}
	rcu_read_unlock();
}

static void kdkit_case_exit(struct kunit *test)
{
	int i = kdkit_suite_of(test);
	struct kdkit_switches now;

	if (i >= 0 && suite_exit[i])
		suite_exit[i](test);
	/* A case stopped by a failed assertion ends its thread, and its switches with it. */
	if (current != at_start.task)
		return;
	kdkit_switches_read(&now);
#if defined(CONFIG_KASAN_GENERIC) || defined(CONFIG_KASAN_SW_TAGS)
	if (now.kasan_depth != at_start.kasan_depth) {
		KUNIT_FAIL(test,
			   "KASAN was switched off for this thread (task_struct's kasan_depth went from %u to %u): the tests need it on",
			   at_start.kasan_depth, now.kasan_depth);
		current->kasan_depth = at_start.kasan_depth;
	}
#endif
#ifdef CONFIG_LOCKDEP
	if (now.lockdep_recursion != at_start.lockdep_recursion) {
		KUNIT_FAIL(test,
			   "lockdep was switched off for this thread (task_struct's lockdep_recursion went from %u to %u): the tests need it on",
			   at_start.lockdep_recursion, now.lockdep_recursion);
		current->lockdep_recursion = at_start.lockdep_recursion;
	}
#endif
	if (at_start.debug_locks && !now.debug_locks)
		KUNIT_FAIL(test,
			   "lockdep went off while this case ran (debug_locks is 0): it reported a problem, or was switched off");
	kdkit_check_others(test);
}

/*
 * A process that ends switched off: the kernel log says so, and fails the
 * case. A kprobe's handler runs as an NMI does, which turns lockdep off
 * for the task once (nmi_enter()); that one is not the driver's.
 */
static int kdkit_exit_pre(struct kprobe *p, struct pt_regs *regs)
{
	unsigned int kasan = 0, lockdep = 0;

#if defined(CONFIG_KASAN_GENERIC) || defined(CONFIG_KASAN_SW_TAGS)
	kasan = current->kasan_depth;
#endif
#ifdef CONFIG_LOCKDEP
	lockdep = current->lockdep_recursion - (in_nmi() ? LOCKDEP_OFF : 0);
#endif
	if (kasan || lockdep)
		pr_err(KDKIT_SWITCHED_OFF
		       " %s (pid %d) ended with KASAN's kasan_depth %u, lockdep's lockdep_recursion %u\n",
		       current->comm, current->pid, kasan, lockdep);
	return 0;
}

static struct kprobe kdkit_exit_probe = {
	.symbol_name = "do_exit",
	.pre_handler = kdkit_exit_pre,
};

int kdkit_switches_init(void)
{
	if (!IS_ENABLED(CONFIG_KASAN) && !IS_ENABLED(CONFIG_LOCKDEP))
		return 0;
	return register_kprobe(&kdkit_exit_probe);
}

void kdkit_switches_cleanup(void)
{
	if (IS_ENABLED(CONFIG_KASAN) || IS_ENABLED(CONFIG_LOCKDEP))
		unregister_kprobe(&kdkit_exit_probe);
}

void kdkit_switches_wrap(struct kunit_suite **list, int n)
{
	int i;

	suites = list;
	nr_suites = min(n, KDKIT_MAX_SUITES);
	for (i = 0; i < nr_suites; i++) {
		suite_init[i] = suites[i]->init;
		suite_exit[i] = suites[i]->exit;
		suites[i]->init = kdkit_case_init;
		suites[i]->exit = kdkit_case_exit;
	}
}
