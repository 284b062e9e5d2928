// SPDX-License-Identifier: GPL-2.0
/*
 * The error-path sweep shared by every lab.
 *
 * fail-nth (Documentation/fault-injection) makes the Nth fault-injection
 * point a task passes fail: with failslab and fail_page_alloc on, that is
 * the Nth allocation. The sweep runs the student's init with N = 1, 2, ...
 * so each allocation fails in turn, and it finds the points by counting: a
 * run that ends with N unconsumed has passed every point, and ends the
 * sweep. A student who adds an allocation is covered without a new test.
 *
 * Then the calls that fail for other reasons (kdkit_fail.c) are failed in
 * turn the same way: the Nth such call the driver makes, until a run makes
 * fewer than N.
 */
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/sched.h>
#include "kdkit.h"

#define SWEEP_MAX_POINTS	200
#define SWEEP_MAX_SHOWN		4

void kdkit_site_describe(const struct kdkit_site *site, char *buf, size_t len)
{
	struct module *mod = kdkit_driver_module();
	unsigned int i, shown = 0;
	int n = 0;

	/* Find the first frame in the driver under test. */
	for (i = 0; i < site->nr; i++)
		if (mod && within_module(site->entries[i], mod))
			break;
	/*
	 * No driver frame before the harness's (or none at all): the kernel
	 * allocated on the driver's behalf, or the driver tail-called it and
	 * left no frame. Name the kernel's callers, which show which.
	 */
	if (i == site->nr || (i > 0 && within_module(site->entries[i - 1], THIS_MODULE))) {
		for (i = 0; i < site->nr && shown < 5 && n < len; i++) {
			if (within_module(site->entries[i], THIS_MODULE))
				break;
			n += scnprintf(buf + n, len - n, "%s%ps", shown++ ? " <- " : "",
				      (void *)site->entries[i]);
		}
		return;
	}
	/* The allocator, the kernel function the driver called, the driver. */
	if (i > 1)
		n = scnprintf(buf, len, "%ps <- ", (void *)site->entries[0]);
	if (i > 2)
		n += scnprintf(buf + n, len - n, "... <- ");
	if (i > 0)
		n += scnprintf(buf + n, len - n, "%pS <- ", (void *)site->entries[i - 1]);
	for (; i < site->nr && shown < 2 && n < len; i++, shown++) {
		if (!within_module(site->entries[i], mod))
			break;
		n += scnprintf(buf + n, len - n, "%s%pS", shown ? " <- " : "",
			      (void *)site->entries[i]);
	}
}
EXPORT_SYMBOL_GPL(kdkit_site_describe);

/* One sweep: counts what went wrong, so that reports stay short. */
struct sweep {
	struct kunit *test;
	const struct kdkit_sweep_ops *ops;
	int failed_points;
	/* The first point that left something: later ones see it too. */
	char dirty[128];
	/* Too large for the stack: allocated once per sweep. */
	struct kdkit_site left[SWEEP_MAX_SHOWN], failed, other;
	char where[160];
};

/* Details of the first few failures only: KUnit keeps 4 KiB of log a case. */
#define SWEEP_MAX_REPORTED	3

static bool sweep_reports(struct sweep *sw)
{
	return ++sw->failed_points <= SWEEP_MAX_REPORTED;
}

static void sweep_report_ret(struct sweep *sw, const char *when, int ret, int want)
{
	const char *what = sw->ops->what;

	if (want && !ret)
		KUNIT_FAIL(sw->test, "%s: %s returned 0, expected an error", when, what);
	else if (want)
		KUNIT_FAIL(sw->test, "%s: %s returned %d, expected %d", when, what, ret, want);
	else if (sw->dirty[0])
		/* What an earlier point left is likely in its way. */
		KUNIT_FAIL(sw->test,
			   "%s: %s returned %d, likely because of what was found left behind after %s",
			   when, what, ret, sw->dirty);
	else
		KUNIT_FAIL(sw->test, "%s: %s returned %d, expected 0", when, what, ret);
}

/*
 * Close the accounting window and report what the run left behind; true if
 * it left nothing. Reports come after the window closes, since KUnit
 * allocates to record them.
 */
static bool sweep_check_run(struct sweep *sw, const char *when, int ret, int want,
			    bool any_error)
{
	struct kdkit_site *left = sw->left;
	char *where = sw->where;
	size_t wlen = sizeof(sw->where);
	int i, n, bad_frees;
	bool ret_ok, failed;

	n = kdkit_leak_end(left, SWEEP_MAX_SHOWN);
	/* The kernel log lists every point, for whoever wants the whole map. */
	failed = kdkit_leak_failed_site(&sw->failed);
	if (failed) {
		kdkit_site_describe(&sw->failed, where, wlen);
		pr_info("kdkit: %s: %s at %s: %s returned %d\n",
			sw->test->name, when, where, sw->ops->what, ret);
	}
	bad_frees = kdkit_leak_bogus_frees(&sw->other);
	ret_ok = ret == want || (ret < 0 && any_error);
	if (!n && !bad_frees && ret_ok)
		return true;
	if (!sweep_reports(sw))
		goto out;
	if (!ret_ok)
		sweep_report_ret(sw, when, ret, want);
	if (bad_frees) {
		kdkit_site_describe(&sw->other, where, wlen);
		KUNIT_FAIL(sw->test,
			   "%s: %s or its undoing freed an IRQ never requested, at %s",
			   when, sw->ops->what, where);
	}
	if (n < 0)
		KUNIT_FAIL(sw->test, "%s: too many allocations left to count", when);
	else if (n)
		KUNIT_FAIL(sw->test, "%s: %d allocation(s) never freed", when, n);
	/* The step that failed: which error path was taken. */
	if (failed && (n || !ret_ok)) {
		kdkit_site_describe(&sw->failed, where, wlen);
		kunit_err(sw->test, "    the allocation that failed: %s", where);
	}
	for (i = 0; i < n && i < SWEEP_MAX_SHOWN; i++) {
		kdkit_site_describe(&left[i], where, wlen);
		kunit_err(sw->test, "    allocated at %s", where);
	}
out:
	if ((n || bad_frees) && !sw->dirty[0])
		strscpy(sw->dirty, when, sizeof(sw->dirty));
	return false;
}

int kdkit_leak_expect_none(struct kunit *test, const char *when)
{
	/* Not allocated: the window is open. One window at a time exists. */
	static struct kdkit_site left[SWEEP_MAX_SHOWN];
	char where[160];
	int i, n;

	n = kdkit_leak_end(left, SWEEP_MAX_SHOWN);
	if (n < 0)
		KUNIT_FAIL(test, "%s: too many allocations left to count", when);
	else if (n)
		KUNIT_FAIL(test, "%s: %d allocation(s) never freed", when, n);
	for (i = 0; i < n && i < SWEEP_MAX_SHOWN; i++) {
		kdkit_site_describe(&left[i], where, sizeof(where));
		kunit_err(test, "    allocated at %s", where);
	}
	return n;
}
EXPORT_SYMBOL_GPL(kdkit_leak_expect_none);

/*
 * The lab's own check of what a failed bring-up left. Once something is
 * left, every later check sees it too: one mistake, one report.
 */
static void sweep_check(struct sweep *sw, const char *when)
{
	bool clean = sw->test->status != KUNIT_FAILURE;

	if (!sw->ops->check || sw->dirty[0])
		return;
	sw->ops->check(sw->test);
	if (clean && sw->test->status == KUNIT_FAILURE)
		strscpy(sw->dirty, when, sizeof(sw->dirty));
}

/*
 * Fail each call that can fail without an allocation, in turn. The driver
 * must return an error and leave nothing, unless it tried the same call
 * again (a fallback: a narrower DMA mask) and went on. Returns how many
 * such calls a clean bring-up makes.
 */
static int sweep_calls(struct sweep *sw)
{
	const struct kdkit_sweep_ops *ops = sw->ops;
	struct kunit *test = sw->test;
	struct kdkit_failed_call call;
	char when[128];
	int nth, ret;
	bool failed;

	for (nth = 1; nth <= SWEEP_MAX_POINTS; nth++) {
		/* First: its kprobes are registered outside the window. */
		kdkit_fail_begin(nth);
		KUNIT_ASSERT_EQ(test, kdkit_leak_begin(), 0);
		ret = ops->up(test);
		failed = kdkit_fail_end(&call);
		if (!ret)
			ops->down(test);
		if (!failed) {
			/* The clean run again, already checked. */
			kdkit_leak_end(NULL, 0);
			break;
		}
		if (call.err)
			snprintf(when, sizeof(when), "%s() failing with %pe in %pS", call.fn,
				 ERR_PTR(call.err), (void *)call.caller);
		else
			snprintf(when, sizeof(when), "%s() returning NULL in %pS", call.fn,
				 (void *)call.caller);
		if (sweep_check_run(sw, when, ret, call.retried ? 0 : -EIO, true) && ret)
			sweep_check(sw, when);
		if (call.bad_irq_fn && sweep_reports(sw))
			KUNIT_FAIL(test, "%s: then %s() was given IRQ %d, an error code",
				   when, call.bad_irq_fn, call.bad_irq);
	}
	return nth - 1;
}

int kdkit_sweep(struct kunit *test, const struct kdkit_sweep_ops *ops)
{
	struct sweep *sw = kunit_kzalloc(test, sizeof(*sw), GFP_KERNEL);
	ktime_t start = ktime_get();
	char when[64];
	int nth, ret, calls;
	bool injected;

	KUNIT_ASSERT_NOT_NULL(test, sw);
	sw->test = test;
	sw->ops = ops;
	for (nth = 1; nth <= SWEEP_MAX_POINTS; nth++) {
		KUNIT_ASSERT_EQ(test, kdkit_leak_begin(), 0);
		current->fail_nth = nth;
		ret = ops->up(test);
		injected = !current->fail_nth;
		current->fail_nth = 0;
		/* Whatever bring-up got, tear-down must give back. */
		if (!ret)
			ops->down(test);

		if (!injected) {
			/* No Nth point: it ran clean, and tear-down undid it all. */
			snprintf(when, sizeof(when), "%s with no failure", ops->what);
			sweep_check_run(sw, when, ret, 0, false);
			break;
		}
		snprintf(when, sizeof(when), "allocation %d of %s failed", nth, ops->what);
		/* ret == 0: the allocator absorbed the failure and it went on. */
		if (sweep_check_run(sw, when, ret, ret ? -ENOMEM : 0, ret && ops->any_error) &&
		    ret)
			sweep_check(sw, when);
	}
	calls = sweep_calls(sw);
	if (nth > SWEEP_MAX_POINTS)
		KUNIT_FAIL(test, "%s has more than %d failure points", ops->what,
			   SWEEP_MAX_POINTS);
	if (sw->failed_points > SWEEP_MAX_REPORTED)
		KUNIT_FAIL(test, "... and %d more failed points not shown",
			   sw->failed_points - SWEEP_MAX_REPORTED);
	kunit_info(test, "swept %d allocations and %d other calls of %s in %lld ms", nth - 1,
		   calls, ops->what, ktime_ms_delta(ktime_get(), start));
	/* Fewer points than a correct driver has, where none failed: one is skipped. */
	if (!sw->failed_points && nth - 1 < ops->least)
		KUNIT_FAIL(test,
			   "%s made %d allocations; one that %s makes at least %d: does it allocate what it needs?",
			   ops->what, nth - 1, ops->least_why, ops->least);
	return nth - 1;
}
EXPORT_SYMBOL_GPL(kdkit_sweep);

static int sweep_driver_init(struct kunit *test)
{
	return kdkit_driver_init();
}

static void sweep_driver_exit(struct kunit *test)
{
	kdkit_driver_exit();
}

int kdkit_sweep_init(struct kunit *test, void (*check)(struct kunit *test), int least,
		     const char *least_why)
{
	const struct kdkit_sweep_ops ops = {
		.what = "init",
		.up = sweep_driver_init,
		.down = sweep_driver_exit,
		.check = check,
		.least = least,
		.least_why = least_why,
	};

	return kdkit_sweep(test, &ops);
}
EXPORT_SYMBOL_GPL(kdkit_sweep_init);
