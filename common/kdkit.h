/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What kdkit.ko offers the lab test suites.
 *
 * A lab's suites are linked into one module with the student's files. That
 * module never runs the student's init or exit on its own: the tests call
 * them, so that each case starts from a fresh driver and a failing init can
 * be examined instead of aborting the load.
 */
#ifndef KDKIT_H
#define KDKIT_H

#include <kunit/test.h>
#include <linux/stringify.h>

/*
 * What kdkit.ko prints when the test module's cases changed while they
 * ran (qemu/harness/results.py fails the whole boot on it).
 */
#define KDKIT_TAMPERED "kdkit: the test module changed its own test cases"
/*
 * What kdkit.ko prints on the console when a module exit left a name
 * registered (kdkit_left.c): the cases after it need a fresh kernel.
 */
#define KDKIT_DIRTY "kdkit: the kernel is left dirty:"

/* Run the student's module_init(); 0 if the module has none. */
int kdkit_driver_init(void);
/*
 * Run the student's module_exit(), if it has one, and note any name it
 * left registered that its init had registered (kdkit_left.c).
 */
void kdkit_driver_exit(void);
void kdkit_left_baseline(void);
/* Fails a case that switched KASAN or lockdep off (kdkit_switches.c). */
void kdkit_switches_wrap(struct kunit_suite **suites, int n);
int kdkit_switches_init(void);
void kdkit_switches_cleanup(void);
#define KDKIT_SWITCHED_OFF "kdkit: the detectors were switched off:"
void kdkit_left_check(void);
/* Fail @test if the last kdkit_driver_exit() left a name registered. */
void kdkit_expect_exit_left_nothing(struct kunit *test);
/* The module under test: the student's files with the suites. */
struct module *kdkit_driver_module(void);
/* Is @dev bound to a driver of the module under test? */
bool kdkit_driver_bound(struct device *dev);
/* What @dev's last probe returned if it failed, else -ENODEV. */
int kdkit_probe_error(struct device *dev);
/*
 * Run the student's init, which must bind @dev (a board's platform device),
 * and return the driver that bound it. *@loaded is set as soon as init has
 * succeeded, so that the case's exit unloads the driver even if no bind.
 */
struct device_driver *kdkit_driver_init_bound(struct kunit *test, struct device *dev,
					      bool *loaded);

/*
 * A bind that must work: its failure says what probe returned, and when,
 * at the case's line (a macro, for KUnit's file and line).
 */
#define kdkit_assert_probed(test, ret, when)					\
	do {									\
		int __probed = (ret);						\
										\
		if (__probed)							\
			KUNIT_ASSERT_FAILURE(test, "probe returned %d %s",	\
					     __probed, when);			\
	} while (0)

/* Does @path name something, e.g. a device node? */
bool kdkit_path_exists(const char *path);

/* A call stack, as recorded where something was allocated. */
struct kdkit_site {
	unsigned long entries[32];
	unsigned int nr;
};

/*
 * Allocation accounting for the current task (kdkit_leak.c): between
 * begin and end, every allocation the task makes is recorded until freed.
 * kdkit_leak_end() returns how many were never freed and copies up to
 * @max_left of their sites; -E2BIG if there were too many to record.
 */
int kdkit_leak_begin(void);
int kdkit_leak_end(struct kdkit_site *left, unsigned int max_left);
/* End the window; fail @test, naming the sites, if anything is left. */
int kdkit_leak_expect_none(struct kunit *test, const char *when);
/* Where the last window's first failed allocation was made, if one failed. */
bool kdkit_leak_failed_site(struct kdkit_site *site);
/* How many free_irq() calls of the last window freed what it never got. */
int kdkit_leak_bogus_frees(struct kdkit_site *site);
void kdkit_leak_cleanup(void);

/*
 * Failing calls (kdkit_fail.c): between begin and end, the @nth call the
 * current task makes from the module under test to a kernel function that
 * can fail without allocating (platform_get_irq(), dma_set_mask(),
 * cdev_add(), ...) returns that function's error without running it.
 * kdkit_fail_end() says which call it was, if there was an @nth.
 */
struct kdkit_failed_call {
	const char *fn;			/* NULL: fewer than @nth calls */
	unsigned long caller;		/* where the module called it */
	long err;			/* what it returned */
	bool retried;			/* then tried another way (a fallback) */
	int bad_irq;			/* an IRQ number <= 0 it passed on ... */
	const char *bad_irq_fn;		/* ... to this function, if any */
};

void kdkit_fail_begin(unsigned int nth);
bool kdkit_fail_end(struct kdkit_failed_call *call);
void kdkit_fail_cleanup(void);

/* Print @site as "callee <- module function", from the module's view. */
void kdkit_site_describe(const struct kdkit_site *site, char *buf, size_t len);

/*
 * The error-path sweep (kdkit_sweep.c): make the 1st, 2nd, ... allocation
 * of a bring-up (init, or a probe through bind) fail in turn, until it runs
 * out of them. After each failure, @up must return -ENOMEM (any error, if
 * @any_error) and leave nothing allocated; each absorbed failure and the
 * final clean run must be undone by @down. @check, if given, runs after
 * each failure for the lab's own checks. Returns the number of points.
 */
struct kdkit_sweep_ops {
	const char *what;			/* "init", "probe": for messages */
	int (*up)(struct kunit *test);
	void (*down)(struct kunit *test);
	void (*check)(struct kunit *test);	/* optional */
	/*
	 * Kernel helpers may report a failed allocation as another error:
	 * devm_ioremap_resource() says -EBUSY when it cannot record its claim.
	 */
	bool any_error;
	/*
	 * What a correct bring-up allocates at the least, and what those are,
	 * for the message when a clean sweep finds fewer.
	 */
	int least;
	const char *least_why;
};

int kdkit_sweep(struct kunit *test, const struct kdkit_sweep_ops *ops);
/* The sweep over the student's module init, undone by its exit. */
int kdkit_sweep_init(struct kunit *test, void (*check)(struct kunit *test), int least,
		     const char *least_why);

/*
 * Run @first and @second at once (kdkit_interleave.c), once for each
 * instruction of @fn and of the driver's functions it calls: @first is
 * stopped at that instruction while @second runs. @check sees each
 * round's outcome, with the instruction @first was stopped at (NULL if
 * it never reached it); it returns false to end the search, and must not
 * abort the case (kprobes are set while it runs). @mm, if set, is lent
 * to both threads.
 */
struct kdkit_interleave {
	void *fn;
	void (*first)(void *data);
	void (*second)(void *data);
	bool (*check)(struct kunit *test, void *data, const void *stopped_at);
	void *data;
	struct mm_struct *mm;
	/*
	 * If set (a NULL-terminated list of kernel functions), @first stops
	 * instead only where one of them returns to the driver, just after
	 * it made something reachable, say; @fn is then unused.
	 */
	void *const *after;
};

void kdkit_interleave(struct kunit *test, const struct kdkit_interleave *il);

/* Close @filp; its release() has run when this returns (kdkit_file.c). */
void kdkit_close(struct file *filp);

/*
 * Expect ioctl @cmd on @filp to return @want. Macros, so that a failure
 * names the command as written: inside KUNIT_EXPECT_EQ() a command such
 * as VSER_GET_BAUD prints as its whole _IOR() expansion.
 */
#define KDKIT_EXPECT_IOCTL(test, filp, cmd, arg, want) \
	kdkit_expect_ioctl(test, filp, cmd, #cmd " at " __FILE__ ":" __stringify(__LINE__), \
			   (unsigned long)(arg), want, false)
#define KDKIT_ASSERT_IOCTL(test, filp, cmd, arg, want) \
	kdkit_expect_ioctl(test, filp, cmd, #cmd " at " __FILE__ ":" __stringify(__LINE__), \
			   (unsigned long)(arg), want, true)
bool kdkit_expect_ioctl(struct kunit *test, struct file *filp, unsigned int cmd,
			const char *what, unsigned long arg, long want, bool fatal);

/*
 * A buffer in a user address space, for calling a driver's file
 * operations from a test as a process would (kdkit_umem.c). Freed when
 * the case ends. The case must call kdkit_umem_setup() first.
 */
void kdkit_umem_setup(struct kunit *test);
void __user *kdkit_umem_alloc(struct kunit *test, size_t size);
/* A read-only page holding @data: a driver that writes to it gets -EFAULT. */
void __user *kdkit_umem_alloc_ro(struct kunit *test, const void *data, size_t size);
/*
 * Two user pages holding @data (@size bytes, two pages at most) whose
 * second page stalls the first copy that touches it, in the copying
 * thread, until kdkit_stall_release(). kdkit_stall_wait() returns once a
 * copy is stalled there, or false after @timeout jiffies.
 */
struct kdkit_stall;
void __user *kdkit_umem_alloc_stall(struct kunit *test, const void *data, size_t size,
				    struct kdkit_stall **stall);
bool kdkit_stall_wait(struct kdkit_stall *st, unsigned long timeout);
void kdkit_stall_release(struct kdkit_stall *st);
/* For kdkit_main.c: the mm of the process loading a test module, or NULL. */
void kdkit_umem_loader(struct mm_struct *mm);

#endif /* KDKIT_H */
