// SPDX-License-Identifier: GPL-2.0
/*
 * A driver's file operations, called from a test.
 *
 * kdkit_close(): close a file and return only once the driver's release()
 * has run.
 * A case runs in a kernel thread, whose last fput() is queued for a worker
 * that flush_delayed_fput() runs at once. But when a case aborts, KUnit
 * 6.1 runs the suite's exit in the loading process (insmod), whose last
 * fput() waits until insmod returns to user space: the driver would be
 * unloaded first, and its release() would run on freed memory. Such a
 * close is handed to a kernel thread.
 */
#include <linux/completion.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/kthread.h>
#include "kdkit.h"

bool kdkit_expect_ioctl(struct kunit *test, struct file *filp, unsigned int cmd,
			const char *what, unsigned long arg, long want, bool fatal)
{
	long got = filp->f_op->unlocked_ioctl ? filp->f_op->unlocked_ioctl(filp, cmd, arg) :
						-ENOTTY;

	if (fatal)
		KUNIT_ASSERT_EQ_MSG(test, got, want, "ioctl %s, on %pD", what, filp);
	KUNIT_EXPECT_EQ_MSG(test, got, want, "ioctl %s, on %pD", what, filp);
	return got == want;
}
EXPORT_SYMBOL_GPL(kdkit_expect_ioctl);

struct close_work {
	struct file *filp;
	struct completion done;
};

static int close_in_kthread(void *data)
{
	struct close_work *w = data;

	filp_close(w->filp, NULL);
	flush_delayed_fput();
	complete(&w->done);
	return 0;
}

void kdkit_close(struct file *filp)
{
	struct close_work w = { .filp = filp };
	struct task_struct *t;

	init_completion(&w.done);
	if (current->flags & PF_KTHREAD) {
		close_in_kthread(&w);
		return;
	}
	t = kthread_run(close_in_kthread, &w, "kdkit-close");
	if (IS_ERR(t)) {
		/* No thread: released late, better than never. */
		filp_close(filp, NULL);
		return;
	}
	wait_for_completion(&w.done);
}
EXPORT_SYMBOL_GPL(kdkit_close);
