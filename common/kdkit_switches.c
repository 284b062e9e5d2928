// SPDX-License-Identifier: GPL-2.0
/*
 * The detectors stay on: KASAN and lockdep each have a per-task switch
 * (task_struct's kasan_depth, lockdep_recursion) that a module can reach
 * with a plain store, and lockdep a global one (debug_locks). A driver
 * that turned one off would hide its own bugs from the checks that grade
 * it. Every case of the test module is wrapped: the switches are read as
 * the case starts and again as it ends, in the case's own thread, and a
 * change fails the case and is undone.
 */
#include <linux/debug_locks.h>
#include <linux/sched.h>
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
		KUNIT_FAIL(test, "KASAN was switched off for this thread (task_struct's kasan_depth went from %u to %u): the tests need it on",
			   at_start.kasan_depth, now.kasan_depth);
		current->kasan_depth = at_start.kasan_depth;
	}
#endif
#ifdef CONFIG_LOCKDEP
	if (now.lockdep_recursion != at_start.lockdep_recursion) {
		KUNIT_FAIL(test, "lockdep was switched off for this thread (task_struct's lockdep_recursion went from %u to %u): the tests need it on",
			   at_start.lockdep_recursion, now.lockdep_recursion);
		current->lockdep_recursion = at_start.lockdep_recursion;
	}
#endif
	if (at_start.debug_locks && !now.debug_locks)
		KUNIT_FAIL(test, "lockdep went off while this case ran (debug_locks is 0): it reported a problem, or was switched off");
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
