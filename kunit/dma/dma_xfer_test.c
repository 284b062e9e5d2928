// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit cases for /dev/edudma: real DMA to and from QEMU's edu device,
 * through read(2), write(2) and the path ioctl, with user buffers. Every
 * streaming mapping bounces through the swiotlb (swiotlb=force), so a
 * missing sync, a wrong direction or an early unmap gives wrong data, as
 * it would on hardware that is not cache-coherent. A bounce slot freed by
 * an unmap is poisoned, so that a device reading it after the unmap reads
 * garbage, as it would read whatever reused the memory.
 */
#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/file.h>
#include <linux/hrtimer.h>
#include <linux/interrupt.h>
#include <linux/irq.h>
#include <linux/kprobes.h>
#include <linux/kthread.h>
#include <linux/random.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/uaccess.h>
#include <kunit/test.h>
#include "edudma_board_test.h"

struct xfer_ctx {
	struct edu_hw *hw;
	struct file *filp;
	char __user *ubuf;
	char __user *scratch;	/* for reading debugfs and /proc */
	char *out, *in;
	bool loaded;
	u32 entries;		/* DMA-API debug entries free before the case */
};

#define XFER_POISON	0x6b	/* as slab poisons what it frees */

/*
 * The device may no longer read a DMA_TO_DEVICE buffer once it is
 * unmapped, but its freed bounce slot keeps the bytes: poison them as the
 * unmap begins. (A slot mapped from the device is copied back by the
 * unmap, so it is left alone.)
 */
static int poison_unmapped(struct kprobe *p, struct pt_regs *regs)
{
	phys_addr_t slot = regs_get_kernel_argument(regs, 1);
	size_t size = regs_get_kernel_argument(regs, 2);

	if (regs_get_kernel_argument(regs, 3) == DMA_TO_DEVICE)
		memset(phys_to_virt(slot), XFER_POISON, size);
	return 0;
}

/* For the whole suite: registering a kprobe costs a grace period. */
static struct kprobe poison = {
	.symbol_name = "swiotlb_tbl_unmap_single",
	.pre_handler = poison_unmapped,
};

static int xfer_suite_init(struct kunit_suite *suite)
{
	int ret = register_kprobe(&poison);

	if (ret)
		pr_err("dma_xfer: cannot watch the swiotlb's unmaps: %d\n", ret);
	return ret;
}

static void xfer_suite_exit(struct kunit_suite *suite)
{
	unregister_kprobe(&poison);
}

static int xfer_init(struct kunit *test)
{
	struct xfer_ctx *ctx = kunit_kzalloc(test, sizeof(*ctx), GFP_KERNEL);
	int ret;

	if (!ctx)
		return -ENOMEM;
	test->priv = ctx;
	ctx->hw = edu_hw_get(test);
	ctx->out = kunit_kmalloc(test, 2 * EDUDMA_MAX_XFER, GFP_KERNEL);
	ctx->in = kunit_kmalloc(test, 2 * EDUDMA_MAX_XFER, GFP_KERNEL);
	if (!ctx->out || !ctx->in)
		return -ENOMEM;
	kdkit_umem_setup(test);
	ctx->ubuf = kdkit_umem_alloc(test, 2 * EDUDMA_MAX_XFER);
	ctx->scratch = kdkit_umem_alloc(test, EDU_SCRATCH);
	ctx->entries = edu_dma_debug(test, ctx->scratch, "num_free_entries");
	ret = kdkit_driver_init();
	if (ret) {
		kunit_err(test, "module init returned %d", ret);
		return ret;
	}
	ctx->loaded = true;
	if (!kdkit_driver_bound(&ctx->hw->pdev->dev)) {
		ret = kdkit_probe_error(&ctx->hw->pdev->dev);
		kunit_err(test, "module init did not bind the edu-dma device: its probe returned %d",
			  ret);
		return ret;
	}
	ctx->filp = filp_open(EDUDMA_DEV, O_RDWR, 0);
	if (IS_ERR(ctx->filp)) {
		kunit_err(test, "open %s: %ld", EDUDMA_DEV, PTR_ERR(ctx->filp));
		return PTR_ERR(ctx->filp);
	}
	return 0;
}

static void xfer_exit(struct kunit *test)
{
	struct xfer_ctx *ctx = test->priv;

	if (!IS_ERR_OR_NULL(ctx->filp))
		kdkit_close(ctx->filp);
	if (ctx->loaded) {
		u32 now;

		kdkit_driver_exit();
		/* Unbound, the driver must hold no DMA memory at all. */
		now = edu_dma_debug(test, ctx->scratch, "num_free_entries");
		KUNIT_EXPECT_EQ_MSG(test, now, ctx->entries,
				    "DMA mappings or coherent buffers left after unload");
	}
	edu_hw_put(ctx->hw);
}

static ssize_t xfer_write(struct kunit *test, const char *data, size_t len)
{
	struct xfer_ctx *ctx = test->priv;
	loff_t pos = 0;

	size_t n = min_t(size_t, len, 2 * EDUDMA_MAX_XFER);

	KUNIT_ASSERT_EQ(test, copy_to_user(ctx->ubuf, data, n), 0);
	return ctx->filp->f_op->write(ctx->filp, ctx->ubuf, len, &pos);
}

static ssize_t xfer_read(struct kunit *test, char *data, size_t len)
{
	struct xfer_ctx *ctx = test->priv;
	loff_t pos = 0;
	ssize_t n;

	KUNIT_ASSERT_EQ(test, clear_user(ctx->ubuf, 2 * EDUDMA_MAX_XFER), 0);
	n = ctx->filp->f_op->read(ctx->filp, ctx->ubuf, len, &pos);
	if (n > 0)
		KUNIT_ASSERT_EQ(test, copy_from_user(data, ctx->ubuf, n), 0);
	return n;
}

static void xfer_set_path(struct kunit *test, u32 path)
{
	struct xfer_ctx *ctx = test->priv;
	long ret;

	KUNIT_ASSERT_EQ(test, put_user(path, (u32 __user *)ctx->ubuf), 0);
	ret = ctx->filp->f_op->unlocked_ioctl(ctx->filp, EDUDMA_SET_PATH,
					      (unsigned long)ctx->ubuf);
	KUNIT_ASSERT_EQ_MSG(test, ret, 0L, "EDUDMA_SET_PATH %u", path);
}

static const char *const path_names[] = { "coherent", "streaming" };

/* Write @len random bytes, read them back, compare. */
static void xfer_round_trip(struct kunit *test, u32 path, size_t len)
{
	struct xfer_ctx *ctx = test->priv;
	ssize_t n;

	get_random_bytes(ctx->out, len);
	n = xfer_write(test, ctx->out, len);
	KUNIT_ASSERT_EQ_MSG(test, n, (ssize_t)len, "%s write of %zu bytes", path_names[path], len);
	n = xfer_read(test, ctx->in, len);
	KUNIT_ASSERT_EQ_MSG(test, n, (ssize_t)len, "%s read of %zu bytes", path_names[path], len);
	if (!memcmp(ctx->in, ctx->out, len))
		return;
	if (!memchr_inv(ctx->in, XFER_POISON, len))
		KUNIT_FAIL(test,
			   "%s: %zu bytes read back are all %#x, the poison of an unmapped bounce buffer: the write unmapped before the device had read it",
			   path_names[path], len, XFER_POISON);
	else
		KUNIT_FAIL(test, "%s: %zu bytes read back differ from those written",
			   path_names[path], len);
}

static void edudma_round_trips_through_both_paths(struct kunit *test)
{
	static const size_t sizes[] = { 1, 64, 1000, EDUDMA_MAX_XFER };
	unsigned int i;
	u32 path;

	for (path = EDUDMA_COHERENT; path <= EDUDMA_STREAMING; path++) {
		xfer_set_path(test, path);
		for (i = 0; i < ARRAY_SIZE(sizes); i++)
			xfer_round_trip(test, path, sizes[i]);
	}
}

static void edudma_refuses_more_than_the_device_buffer(struct kunit *test)
{
	struct xfer_ctx *ctx = test->priv;
	u32 path;

	for (path = EDUDMA_COHERENT; path <= EDUDMA_STREAMING; path++) {
		xfer_set_path(test, path);
		memset(ctx->out, 0x5a, 2 * EDUDMA_MAX_XFER);
		KUNIT_EXPECT_EQ_MSG(test, xfer_write(test, ctx->out, EDUDMA_MAX_XFER + 1),
				    (ssize_t)-EINVAL, "%s write of %d bytes", path_names[path],
				    EDUDMA_MAX_XFER + 1);
		KUNIT_EXPECT_EQ_MSG(test, xfer_read(test, ctx->in, 2 * EDUDMA_MAX_XFER),
				    (ssize_t)-EINVAL, "%s read of %d bytes", path_names[path],
				    2 * EDUDMA_MAX_XFER);
		/* The limit itself still works. */
		xfer_round_trip(test, path, EDUDMA_MAX_XFER);
	}
}

/*
 * A transfer of @len bytes moves those bytes and no others. The device's
 * buffer is filled through the other path first, so that the tail of this
 * path's buffer holds something else; a read must not write past @len
 * into the user's buffer.
 */
static void edudma_partial_transfers_touch_only_their_bytes(struct kunit *test)
{
	struct xfer_ctx *ctx = test->priv;
	const size_t len = 100, full = EDUDMA_MAX_XFER;
	char *head = kunit_kmalloc(test, len, GFP_KERNEL);
	char *marks = kunit_kmalloc(test, full, GFP_KERNEL);
	u32 path;

	KUNIT_ASSERT_NOT_NULL(test, head);
	KUNIT_ASSERT_NOT_NULL(test, marks);
	memset(marks, 0xa5, full);
	for (path = EDUDMA_COHERENT; path <= EDUDMA_STREAMING; path++) {
		ssize_t got;
		size_t n;

		xfer_set_path(test, !path);
		get_random_bytes(ctx->out, full);
		KUNIT_ASSERT_EQ(test, xfer_write(test, ctx->out, full), (ssize_t)full);
		xfer_set_path(test, path);
		get_random_bytes(head, len);
		KUNIT_ASSERT_EQ_MSG(test, xfer_write(test, head, len), (ssize_t)len,
				    "%s write of %zu bytes", path_names[path], len);
		memcpy(ctx->out, head, len);

		KUNIT_ASSERT_EQ(test, clear_user(ctx->ubuf, len), 0);
		KUNIT_ASSERT_EQ(test, copy_to_user(ctx->ubuf + len, marks, full), 0);
		got = ctx->filp->f_op->read(ctx->filp, ctx->ubuf, len, &(loff_t){ 0 });
		KUNIT_ASSERT_EQ_MSG(test, got, (ssize_t)len, "%s read of %zu bytes",
				    path_names[path], len);
		KUNIT_ASSERT_EQ(test, copy_from_user(ctx->in, ctx->ubuf, len + full), 0);
		KUNIT_EXPECT_EQ_MSG(test, memcmp(ctx->in + len, marks, full), 0,
				    "a %s read of %zu bytes wrote past them into the user's buffer",
				    path_names[path], len);

		KUNIT_ASSERT_EQ(test, xfer_read(test, ctx->in, full), (ssize_t)full);
		for (n = 0; n < full && ctx->in[n] == ctx->out[n]; n++)
			;
		KUNIT_EXPECT_EQ_MSG(test, n, full,
				    "after a %s write of %zu bytes, byte %zu of edu's buffer changed%s",
				    path_names[path], len, n,
				    n < len ? "" : ": the write moved more than it was given");
	}
}

/*
 * Give edu @len new random bytes (kept in @fresh) through the coherent
 * path, then switch to the streaming path, whose buffer still holds old
 * ones: a streaming read must return the new.
 */
static void xfer_put_fresh(struct kunit *test, char *fresh, size_t len)
{
	get_random_bytes(fresh, len);
	xfer_set_path(test, EDUDMA_COHERENT);
	KUNIT_ASSERT_EQ(test, xfer_write(test, fresh, len), (ssize_t)len);
	xfer_set_path(test, EDUDMA_STREAMING);
}

/*
 * Reads must return what the device holds, not what the reused streaming
 * buffer held before: the streaming buffer is left with old bytes, and the
 * device is given new ones through the coherent path.
 */
static void edudma_streaming_read_returns_what_the_device_holds(struct kunit *test)
{
	struct xfer_ctx *ctx = test->priv;
	const size_t len = 512;
	char *fresh = kunit_kmalloc(test, len, GFP_KERNEL);
	unsigned int round;

	KUNIT_ASSERT_NOT_NULL(test, fresh);
	for (round = 0; round < 3; round++) {
		xfer_set_path(test, EDUDMA_STREAMING);
		xfer_round_trip(test, EDUDMA_STREAMING, len);
		xfer_put_fresh(test, fresh, len);
		KUNIT_ASSERT_EQ(test, xfer_read(test, ctx->in, len), (ssize_t)len);
		KUNIT_EXPECT_EQ_MSG(test, memcmp(ctx->in, fresh, len), 0,
				    "a streaming read returned stale bytes, not the device's (round %u)",
				    round);
	}
}

/*
 * A handler must acknowledge edu before it wakes the waiter: once woken,
 * the waiter may start the next transfer, whose interrupt a late
 * acknowledgment would clear. A kprobe on try_to_wake_up(), where every
 * wake-up ends (complete(), wake_up(), wake_up_process()), looks at edu's
 * status when the waiter (the case's own task) is woken by edu's handler
 * or by its thread; the thread's own wake-up is not the waiter's.
 */
static struct {
	int irq;
	void __iomem *regs;
	struct task_struct *waiter;	/* the case's task, asleep in a transfer */
	bool handling[NR_CPUS];		/* this CPU runs edu's hard handler */
	struct task_struct *thread;	/* edu's handler thread, while it runs */
	unsigned int early;		/* waiter wake-ups before the acknowledgment */
	unsigned long site;		/* where in the driver the first came from */
} wake_watch;

static int wake_watch_irq_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct irq_desc *desc = (struct irq_desc *)regs_get_kernel_argument(regs, 0);

	if (desc->irq_data.irq != wake_watch.irq)
		return 1;	/* another interrupt: no return handler */
	wake_watch.handling[smp_processor_id()] = true;
	return 0;
}

static int wake_watch_irq_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	wake_watch.handling[smp_processor_id()] = false;
	return 0;
}

static int wake_watch_thread_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct irq_desc *desc = (struct irq_desc *)regs_get_kernel_argument(regs, 0);

	if (desc->irq_data.irq != wake_watch.irq)
		return 1;
	WRITE_ONCE(wake_watch.thread, current);
	return 0;
}

static int wake_watch_thread_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	WRITE_ONCE(wake_watch.thread, NULL);
	return 0;
}

/* The first return address into this module's code above @sp: the driver's. */
static unsigned long wake_watch_caller(unsigned long *sp)
{
	const struct module_layout *text = &THIS_MODULE->core_layout;
	unsigned long word;
	unsigned int i;

	for (i = 0; i < 256; i++) {
		if (copy_from_kernel_nofault(&word, sp + i, sizeof(word)))
			break;
		if (word - (unsigned long)text->base < text->text_size)
			return word;
	}
	return 0;
}

static int wake_watch_wake(struct kprobe *p, struct pt_regs *regs)
{
	if ((struct task_struct *)regs_get_kernel_argument(regs, 0) != wake_watch.waiter ||
	    !(wake_watch.handling[smp_processor_id()] || READ_ONCE(wake_watch.thread) == current) ||
	    !(readl(wake_watch.regs + EDU_TEST_IRQ_STATUS) & EDU_TEST_IRQ_DMA))
		return 0;
	if (!wake_watch.early++)
		wake_watch.site = wake_watch_caller((unsigned long *)regs->sp);
	return 0;
}

/*
 * Run @fn, counting the waiter's wake-ups from edu's handler or its
 * thread before it acknowledged. @fn must not abort the case: the probes
 * live on this stack.
 */
static void wake_watch_run(struct kunit *test, void (*fn)(struct kunit *test))
{
	struct xfer_ctx *ctx = test->priv;
	struct kretprobe hard = {
		.kp.symbol_name = "__handle_irq_event_percpu",
		.entry_handler = wake_watch_irq_entry,
		.handler = wake_watch_irq_return,
		.maxactive = 8,
	};
	struct kretprobe threaded[] = {
		{ .kp.symbol_name = "irq_thread_fn" },
		{ .kp.symbol_name = "irq_forced_thread_fn" },
	};
	struct kretprobe *probes[] = { &hard, &threaded[0], &threaded[1] };
	struct kprobe wake = {
		.symbol_name = "try_to_wake_up",
		.pre_handler = wake_watch_wake,
	};
	unsigned int i;
	int ret;

	memset(&wake_watch, 0, sizeof(wake_watch));
	wake_watch.irq = ctx->hw->irq;
	wake_watch.regs = ctx->hw->regs;
	wake_watch.waiter = current;
	for (i = 0; i < ARRAY_SIZE(threaded); i++) {
		threaded[i].entry_handler = wake_watch_thread_entry;
		threaded[i].handler = wake_watch_thread_return;
		threaded[i].maxactive = 2;
	}
	KUNIT_ASSERT_EQ(test, register_kprobe(&wake), 0);
	ret = register_kretprobes(probes, ARRAY_SIZE(probes));
	if (ret)
		unregister_kprobe(&wake);
	KUNIT_ASSERT_EQ(test, ret, 0);
	fn(test);
	unregister_kretprobes(probes, ARRAY_SIZE(probes));
	unregister_kprobe(&wake);
	KUNIT_EXPECT_EQ_MSG(test, wake_watch.early, 0U,
			    "the interrupt woke the waiting transfer before edu was acknowledged (%pS): acknowledge first",
			    (void *)wake_watch.site);
}

/* Four transfers of 128 bytes, two on each path, checked after the probes. */
static struct {
	void __user *path[2];	/* EDUDMA_SET_PATH's argument for each path */
	ssize_t n[4];
	u32 status[4];
} irq_xfers;

static void irq_xfers_run(struct kunit *test)
{
	struct xfer_ctx *ctx = test->priv;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(irq_xfers.n); i++) {
		loff_t pos = 0;

		if (i % 2 == 0)
			ctx->filp->f_op->unlocked_ioctl(ctx->filp, EDUDMA_SET_PATH,
							(unsigned long)irq_xfers.path[i / 2]);
		if (i % 2 == 0)
			irq_xfers.n[i] = ctx->filp->f_op->write(ctx->filp, ctx->ubuf, 128, &pos);
		else
			irq_xfers.n[i] = ctx->filp->f_op->read(ctx->filp, ctx->ubuf, 128, &pos);
		irq_xfers.status[i] = readl(ctx->hw->regs + EDU_TEST_IRQ_STATUS);
	}
}

static void edudma_interrupt_fires_and_is_acknowledged(struct kunit *test)
{
	struct xfer_ctx *ctx = test->priv;
	unsigned long before = edu_irq_count(test, ctx->scratch, ctx->hw);
	unsigned long unhandled = edu_irq_unhandled(test, ctx->scratch, ctx->hw);
	unsigned int i;
	u32 path;

	memset(&irq_xfers, 0, sizeof(irq_xfers));
	for (path = EDUDMA_COHERENT; path <= EDUDMA_STREAMING; path++)
		irq_xfers.path[path] = kdkit_umem_alloc_ro(test, &path, sizeof(path));
	wake_watch_run(test, irq_xfers_run);
	for (i = 0; i < ARRAY_SIZE(irq_xfers.n); i++) {
		KUNIT_EXPECT_EQ_MSG(test, irq_xfers.n[i], (ssize_t)128, "%s %s of 128 bytes",
				    path_names[i / 2], i % 2 ? "read" : "write");
		KUNIT_EXPECT_EQ_MSG(test, irq_xfers.status[i], 0U,
				    "edu's interrupt status is still set after a %s %s",
				    path_names[i / 2], i % 2 ? "read" : "write");
	}
	KUNIT_EXPECT_GE_MSG(test, edu_irq_count(test, ctx->scratch, ctx->hw) - before, 4UL,
			    "four transfers, but the interrupt fired %lu times",
			    edu_irq_count(test, ctx->scratch, ctx->hw) - before);
	/* IRQ_HANDLED for an interrupt the handler acknowledged. */
	unhandled = edu_irq_unhandled(test, ctx->scratch, ctx->hw) - unhandled;
	KUNIT_EXPECT_EQ_MSG(test, unhandled, 0UL,
			    "the handler returned IRQ_NONE for %lu of its own interrupts",
			    unhandled);
}

/*
 * With the interrupt line masked, the driver waits in vain: it must give
 * up with -ETIMEDOUT, undo its mapping, and work again once unmasked.
 */
static void edudma_times_out_without_interrupt(struct kunit *test)
{
	struct xfer_ctx *ctx = test->priv;
	u32 path;

	for (path = EDUDMA_COHERENT; path <= EDUDMA_STREAMING; path++) {
		u32 entries = edu_dma_debug(test, ctx->scratch, "num_free_entries"), now;

		xfer_set_path(test, path);
		disable_irq(ctx->hw->irq);
		KUNIT_EXPECT_EQ_MSG(test, xfer_write(test, ctx->out, 256), (ssize_t)-ETIMEDOUT,
				    "%s write with no interrupt", path_names[path]);
		KUNIT_EXPECT_EQ_MSG(test, xfer_read(test, ctx->in, 256), (ssize_t)-ETIMEDOUT,
				    "%s read with no interrupt", path_names[path]);
		enable_irq(ctx->hw->irq);
		now = edu_dma_debug(test, ctx->scratch, "num_free_entries");
		KUNIT_EXPECT_EQ_MSG(test, now, entries,
				    "a timed out %s transfer kept a mapping", path_names[path]);
		xfer_round_trip(test, path, 256);
	}
}

/*
 * An interrupt that comes after its transfer timed out must not end the
 * next transfer's wait: the completion is re-armed before each transfer.
 * If it is not, the next write returns while edu is still busy, edu
 * ignores the read's command, and the read returns the streaming
 * buffer's old bytes.
 */
static void edudma_a_late_interrupt_does_not_end_the_next_wait(struct kunit *test)
{
	struct xfer_ctx *ctx = test->priv;
	char *fresh = kunit_kmalloc(test, 256, GFP_KERNEL);
	unsigned int ms;

	KUNIT_ASSERT_NOT_NULL(test, fresh);
	xfer_set_path(test, EDUDMA_STREAMING);
	xfer_round_trip(test, EDUDMA_STREAMING, 256);
	xfer_set_path(test, EDUDMA_COHERENT);
	disable_irq(ctx->hw->irq);
	KUNIT_EXPECT_EQ_MSG(test, xfer_write(test, ctx->out, 256), (ssize_t)-ETIMEDOUT,
			    "coherent write with no interrupt");
	enable_irq(ctx->hw->irq);
	/* The late interrupt is handled: its status is acknowledged. */
	for (ms = 0; ms < 1000 && readl(ctx->hw->regs + EDU_TEST_IRQ_STATUS); ms++)
		usleep_range(1000, 2000);
	KUNIT_ASSERT_EQ_MSG(test, readl(ctx->hw->regs + EDU_TEST_IRQ_STATUS), 0U,
			    "the late interrupt was never acknowledged");
	xfer_put_fresh(test, fresh, 256);
	KUNIT_ASSERT_EQ(test, xfer_read(test, ctx->in, 256), (ssize_t)256);
	/* Old bytes: the write before did not wait for its own interrupt. */
	KUNIT_EXPECT_EQ_MSG(test, memcmp(ctx->in, fresh, 256), 0,
			    "after a late interrupt, a read returned old bytes (re-arm the completion before each transfer)");
}

/*
 * An interrupt that is not the DMA's, raised while a transfer runs (edu's
 * command register keeps its run bit until the transfer is done) and
 * taken back 2 ms later, so that a handler that leaves it does not face
 * an endless line of them.
 */
struct foreign_irq {
	struct hrtimer timer;
	void __iomem *regs;
	ktime_t raised;		/* 0 until it is */
	bool acked;
};

#define EDU_TEST_DMA_CMD	0x98
#define EDU_TEST_DMA_RUN	0x1

static enum hrtimer_restart foreign_irq_tick(struct hrtimer *t)
{
	struct foreign_irq *f = container_of(t, struct foreign_irq, timer);

	if (!f->raised && readl(f->regs + EDU_TEST_DMA_CMD) & EDU_TEST_DMA_RUN) {
		writel(EDU_TEST_IRQ_FOREIGN, f->regs + EDU_TEST_IRQ_RAISE);
		f->raised = ktime_get();
	} else if (f->raised && ktime_ms_delta(ktime_get(), f->raised) >= 2) {
		writel(EDU_TEST_IRQ_FOREIGN, f->regs + EDU_TEST_IRQ_ACK);
		f->acked = true;
		return HRTIMER_NORESTART;
	}
	hrtimer_forward_now(t, ns_to_ktime(200 * NSEC_PER_USEC));
	return HRTIMER_RESTART;
}

static void edudma_a_foreign_interrupt_does_not_end_a_transfer(struct kunit *test)
{
	struct xfer_ctx *ctx = test->priv;
	struct foreign_irq f = { .regs = ctx->hw->regs };
	char *fresh = kunit_kmalloc(test, 256, GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, fresh);
	xfer_set_path(test, EDUDMA_STREAMING);
	xfer_round_trip(test, EDUDMA_STREAMING, 256);
	xfer_put_fresh(test, fresh, 256);
	hrtimer_init(&f.timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL_HARD);
	f.timer.function = foreign_irq_tick;
	hrtimer_start(&f.timer, ns_to_ktime(200 * NSEC_PER_USEC), HRTIMER_MODE_REL_HARD);
	KUNIT_EXPECT_EQ(test, xfer_read(test, ctx->in, 256), (ssize_t)256);
	hrtimer_cancel(&f.timer);
	if (!f.acked)
		writel(EDU_TEST_IRQ_FOREIGN, ctx->hw->regs + EDU_TEST_IRQ_ACK);
	KUNIT_ASSERT_TRUE_MSG(test, f.raised, "the read started no transfer of edu's");
	KUNIT_EXPECT_EQ_MSG(test, memcmp(ctx->in, fresh, 256), 0,
			    "a read returned old bytes: an interrupt that was not the DMA's ended its wait (check the status bit)");
}

/* A read in a thread that takes a signal while edu copies. */
struct signalled {
	struct file *filp;
	struct mm_struct *mm;
	char __user *ubuf;
	void __iomem *regs;
	ssize_t n;
	bool still_copying;	/* edu still ran the transfer when read returned */
	struct completion done;
};

static int signalled_run(void *data)
{
	struct signalled *s = data;

	allow_signal(SIGUSR1);
	kthread_use_mm(s->mm);
	s->n = s->filp->f_op->read(s->filp, s->ubuf, 256, &(loff_t){ 0 });
	s->still_copying = readl(s->regs + EDU_TEST_DMA_CMD) & EDU_TEST_DMA_RUN;
	kthread_unuse_mm(s->mm);
	complete(&s->done);
	return 0;
}

/*
 * A signal comes while a read waits for edu. The driver may wait on, or
 * give up with -ERESTARTSYS once the device is done, but never return
 * while edu still copies into a buffer it is about to unmap or reuse.
 */
static void edudma_a_signal_never_ends_a_transfer_early(struct kunit *test)
{
	struct xfer_ctx *ctx = test->priv;
	u32 path;

	for (path = EDUDMA_COHERENT; path <= EDUDMA_STREAMING; path++) {
		struct signalled s = {
			.filp = ctx->filp, .mm = current->mm, .ubuf = ctx->ubuf,
			.regs = ctx->hw->regs,
		};
		struct task_struct *task;
		bool seen = false;
		int i;

		xfer_set_path(test, path);
		init_completion(&s.done);
		task = kthread_run(signalled_run, &s, "edudma-signalled");
		KUNIT_ASSERT_FALSE(test, IS_ERR(task));
		get_task_struct(task);
		for (i = 0; i < 20000 && !seen && !completion_done(&s.done); i++) {
			seen = readl(ctx->hw->regs + EDU_TEST_DMA_CMD) & EDU_TEST_DMA_RUN;
			if (!seen)
				usleep_range(50, 100);
		}
		if (seen)
			send_sig(SIGUSR1, task, 1);
		wait_for_completion(&s.done);
		put_task_struct(task);
		KUNIT_ASSERT_TRUE_MSG(test, seen, "a %s read started no transfer of edu's",
				      path_names[path]);
		KUNIT_EXPECT_FALSE_MSG(test, s.still_copying,
				       "a signal ended a %s read (%zd) while edu was still copying: wait for the transfer's end",
				       path_names[path], s.n);
		KUNIT_EXPECT_TRUE_MSG(test, s.n == 256 || s.n == -ERESTARTSYS,
				      "a %s read that took a signal returned %zd: 256, or -ERESTARTSYS once edu is done",
				      path_names[path], s.n);
	}
}

/*
 * A write and a read through one open file at once, as two processes
 * could. The write's user buffer stalls half copied (its second page
 * faults, and the kit's fault handler waits), and the read runs then.
 * edu does one transfer at a time, and the path's buffer is shared: a
 * write must hold the lock from filling the buffer until edu has the
 * bytes, or the read's transfer lands in the buffer the write is filling,
 * and edu gets a mixture.
 */
#define RACE_LEN	256
#define RACE_OLD	'o'	/* what edu holds before the write */
#define RACE_NEW	'n'	/* what the write sends */

struct xfer_race {
	struct file *filp;
	struct mm_struct *mm;
	char __user *buf;
	bool write;
	ssize_t n;
	struct completion done;
};

static int xfer_race_run(void *data)
{
	struct xfer_race *r = data;
	loff_t pos = 0;

	kthread_use_mm(r->mm);
	r->n = r->write ? r->filp->f_op->write(r->filp, r->buf, RACE_LEN, &pos) :
			  r->filp->f_op->read(r->filp, r->buf, RACE_LEN, &pos);
	kthread_unuse_mm(r->mm);
	complete(&r->done);
	return 0;
}

static struct task_struct *xfer_race_start(struct kunit *test, struct xfer_race *r)
{
	struct task_struct *t;

	init_completion(&r->done);
	t = kthread_create(xfer_race_run, r, "edudma-%s", r->write ? "writer" : "reader");
	KUNIT_ASSERT_FALSE(test, IS_ERR(t));
	get_task_struct(t);
	wake_up_process(t);
	return t;
}

/* Until @r is done, or asleep for good (on the lock the writer holds). */
static void xfer_race_settle(struct xfer_race *r, struct task_struct *t)
{
	unsigned int quiet = 0, i;

	for (i = 0; i < 10 * HZ && !completion_done(&r->done) && quiet < 3; i++) {
		quiet = READ_ONCE(t->__state) != TASK_RUNNING && !READ_ONCE(t->on_cpu) ?
			quiet + 1 : 0;
		schedule_timeout_uninterruptible(1);
	}
}

static void edudma_two_transfers_at_once_stay_apart(struct kunit *test)
{
	struct xfer_ctx *ctx = test->priv;
	char *data = kunit_kmalloc(test, 2 * PAGE_SIZE, GFP_KERNEL);
	struct xfer_race w = { .filp = ctx->filp, .mm = current->mm, .write = true };
	struct xfer_race r = { .filp = ctx->filp, .mm = current->mm, .buf = ctx->ubuf };
	struct task_struct *wt, *rt;
	struct kdkit_stall *stall;
	bool stalled;
	u32 path;

	KUNIT_ASSERT_NOT_NULL(test, data);
	memset(data, RACE_NEW, 2 * PAGE_SIZE);
	for (path = EDUDMA_COHERENT; path <= EDUDMA_STREAMING; path++) {
		const char *name = path_names[path];

		xfer_set_path(test, path);
		memset(ctx->out, RACE_OLD, RACE_LEN);
		KUNIT_ASSERT_EQ(test, xfer_write(test, ctx->out, RACE_LEN), (ssize_t)RACE_LEN);
		/* Half the bytes before the stalling page, half on it. */
		w.buf = kdkit_umem_alloc_stall(test, data, 2 * PAGE_SIZE, &stall) +
			PAGE_SIZE - RACE_LEN / 2;
		wt = xfer_race_start(test, &w);
		stalled = kdkit_stall_wait(stall, 10 * HZ);
		if (stalled) {
			rt = xfer_race_start(test, &r);
			xfer_race_settle(&r, rt);
		}
		kdkit_stall_release(stall);
		wait_for_completion(&w.done);
		put_task_struct(wt);
		KUNIT_ASSERT_TRUE_MSG(test, stalled,
				      "%s: the write never read its user buffer (%zd)", name, w.n);
		wait_for_completion(&r.done);
		put_task_struct(rt);

		KUNIT_EXPECT_EQ_MSG(test, w.n, (ssize_t)RACE_LEN, "%s: the write returned %zd",
				    name, w.n);
		KUNIT_EXPECT_EQ_MSG(test, r.n, (ssize_t)RACE_LEN, "%s: the read returned %zd",
				    name, r.n);
		KUNIT_ASSERT_EQ(test, copy_from_user(ctx->in, ctx->ubuf, RACE_LEN), 0);
		KUNIT_EXPECT_TRUE_MSG(test, !memchr_inv(ctx->in, RACE_OLD, RACE_LEN) ||
				      !memchr_inv(ctx->in, RACE_NEW, RACE_LEN),
				      "%s: a read during a write got bytes of neither whole", name);
		KUNIT_ASSERT_EQ(test, xfer_read(test, ctx->in, RACE_LEN), (ssize_t)RACE_LEN);
		KUNIT_EXPECT_TRUE_MSG(test, !memchr_inv(ctx->in, RACE_NEW, RACE_LEN),
				      "%s: a read ran while a write was copying in its bytes, and edu got a mixture: hold the lock from filling the buffer until edu has it",
				      name);
	}
}

/*
 * Use up the swiotlb with the tests' own mappings of the device, so that
 * the driver's next streaming mapping fails: it must say -ENOMEM, hold
 * nothing, and work again once there is room.
 */
static void edudma_mapping_failure_returns_enomem(struct kunit *test)
{
	struct xfer_ctx *ctx = test->priv;
	struct device *dev = &ctx->hw->pdev->dev;
	size_t chunk = min_t(size_t, dma_max_mapping_size(dev), SZ_256K);
	const unsigned int max = 2048;
	dma_addr_t *held = kunit_kcalloc(test, max, sizeof(*held), GFP_KERNEL);
	size_t *sizes = kunit_kcalloc(test, max, sizeof(*sizes), GFP_KERNEL);
	void *filler = kunit_kmalloc(test, chunk, GFP_KERNEL);
	unsigned int n = 0, i;
	ssize_t wrote, read;
	u32 entries, after;

	KUNIT_ASSERT_NOT_NULL(test, held);
	KUNIT_ASSERT_NOT_NULL(test, sizes);
	KUNIT_ASSERT_NOT_NULL(test, filler);
	xfer_set_path(test, EDUDMA_STREAMING);
	/* Fill in big chunks, then in ever smaller ones, so that nothing fits. */
	for (; chunk >= SZ_2K && n < max; chunk /= 2) {
		while (n < max) {
			held[n] = dma_map_single_attrs(dev, filler, chunk, DMA_TO_DEVICE,
						       DMA_ATTR_NO_WARN);
			if (dma_mapping_error(dev, held[n]))
				break;
			sizes[n++] = chunk;
		}
	}
	entries = edu_dma_debug(test, ctx->scratch, "num_free_entries");
	wrote = xfer_write(test, ctx->out, 1024);
	read = xfer_read(test, ctx->in, 1024);
	after = edu_dma_debug(test, ctx->scratch, "num_free_entries");
	for (i = 0; i < n; i++)
		dma_unmap_single_attrs(dev, held[i], sizes[i], DMA_TO_DEVICE, 0);

	KUNIT_ASSERT_LT_MSG(test, n, max, "the swiotlb never filled up");
	KUNIT_EXPECT_EQ_MSG(test, wrote, (ssize_t)-ENOMEM,
			    "streaming write when no mapping can be made");
	KUNIT_EXPECT_EQ_MSG(test, read, (ssize_t)-ENOMEM,
			    "streaming read when no mapping can be made");
	KUNIT_EXPECT_EQ_MSG(test, after, entries, "a failed mapping left a DMA-API entry behind");
	xfer_round_trip(test, EDUDMA_STREAMING, 1024);
}

/* read(2) and write(2) of nothing move nothing and say 0, on both paths. */
static void edudma_zero_length_transfers_return_0(struct kunit *test)
{
	u32 path;

	for (path = EDUDMA_COHERENT; path <= EDUDMA_STREAMING; path++) {
		xfer_set_path(test, path);
		KUNIT_EXPECT_EQ_MSG(test, xfer_write(test, "", 0), (ssize_t)0,
				    "%s write of 0 bytes", path_names[path]);
		KUNIT_EXPECT_EQ_MSG(test, xfer_read(test, NULL, 0), (ssize_t)0,
				    "%s read of 0 bytes", path_names[path]);
	}
}

/*
 * A user buffer that cannot be read or written is -EFAULT, and the driver
 * keeps no mapping: a read finds out only after its transfer, when it
 * copies the bytes out.
 */
static void edudma_bad_user_buffer_returns_efault_and_holds_nothing(struct kunit *test)
{
	struct xfer_ctx *ctx = test->priv;
	struct file *f = ctx->filp;
	char __user *bad = (char __user *)1;
	loff_t pos = 0;
	u32 path;

	for (path = EDUDMA_COHERENT; path <= EDUDMA_STREAMING; path++) {
		const char *name = path_names[path];
		u32 entries = edu_dma_debug(test, ctx->scratch, "num_free_entries"), now;

		xfer_set_path(test, path);
		KUNIT_EXPECT_EQ_MSG(test, f->f_op->write(f, bad, 64, &pos), (ssize_t)-EFAULT,
				    "%s write from a bad buffer", name);
		KUNIT_EXPECT_EQ_MSG(test, f->f_op->read(f, bad, 64, &pos), (ssize_t)-EFAULT,
				    "%s read into a bad buffer", name);
		now = edu_dma_debug(test, ctx->scratch, "num_free_entries");
		KUNIT_EXPECT_EQ_MSG(test, now, entries,
				    "a %s transfer with a bad buffer kept a mapping", name);
		xfer_round_trip(test, path, 64);
	}
}

/*
 * EDUDMA_GET_PATH gives what EDUDMA_SET_PATH set; SET only reads its
 * argument; a refused SET changes nothing.
 */
static void edudma_path_ioctls_round_trip(struct kunit *test)
{
	struct xfer_ctx *ctx = test->priv;
	struct file *f = ctx->filp;
	unsigned long arg = (unsigned long)ctx->ubuf;
	u32 path, got;

	for (path = EDUDMA_COHERENT; path <= EDUDMA_STREAMING; path++) {
		/* _IOW: the driver reads the argument and never writes it (-EFAULT). */
		void __user *ro = kdkit_umem_alloc_ro(test, &path, sizeof(path));

		KDKIT_EXPECT_IOCTL(test, f, EDUDMA_SET_PATH, ro, 0);
		KUNIT_ASSERT_EQ(test, put_user(7U, (u32 __user *)ctx->ubuf), 0);
		KDKIT_EXPECT_IOCTL(test, f, EDUDMA_SET_PATH, arg, -EINVAL);
		KDKIT_ASSERT_IOCTL(test, f, EDUDMA_GET_PATH, arg, 0);
		KUNIT_ASSERT_EQ(test, get_user(got, (u32 __user *)ctx->ubuf), 0);
		KUNIT_EXPECT_EQ_MSG(test, got, path, "EDUDMA_GET_PATH after setting %s, then 7",
				    path_names[path]);
	}
	KDKIT_EXPECT_IOCTL(test, f, EDUDMA_GET_PATH, 1, -EFAULT);
	KDKIT_EXPECT_IOCTL(test, f, EDUDMA_SET_PATH, 1, -EFAULT);
	KDKIT_EXPECT_IOCTL(test, f, _IO(EDUDMA_IOC_MAGIC, 9), arg, -ENOTTY);
	KDKIT_EXPECT_IOCTL(test, f, _IOR(EDUDMA_IOC_MAGIC, 1, __u64), arg, -ENOTTY);
	KUNIT_EXPECT_PTR_EQ_MSG(test, f->f_op->owner, kdkit_driver_module(),
				"edudma's file_operations have no .owner = THIS_MODULE");
}

static struct kunit_case dma_xfer_cases[] = {
	KUNIT_CASE(edudma_round_trips_through_both_paths),
	KUNIT_CASE(edudma_path_ioctls_round_trip),
	KUNIT_CASE(edudma_refuses_more_than_the_device_buffer),
	KUNIT_CASE(edudma_partial_transfers_touch_only_their_bytes),
	KUNIT_CASE(edudma_streaming_read_returns_what_the_device_holds),
	KUNIT_CASE(edudma_interrupt_fires_and_is_acknowledged),
	KUNIT_CASE(edudma_times_out_without_interrupt),
	KUNIT_CASE(edudma_a_late_interrupt_does_not_end_the_next_wait),
	KUNIT_CASE(edudma_a_foreign_interrupt_does_not_end_a_transfer),
	KUNIT_CASE(edudma_a_signal_never_ends_a_transfer_early),
	KUNIT_CASE(edudma_two_transfers_at_once_stay_apart),
	KUNIT_CASE(edudma_mapping_failure_returns_enomem),
	KUNIT_CASE(edudma_zero_length_transfers_return_0),
	KUNIT_CASE(edudma_bad_user_buffer_returns_efault_and_holds_nothing),
	{}
};

static struct kunit_suite dma_xfer_suite = {
	.name = "dma_xfer",
	.init = xfer_init,
	.exit = xfer_exit,
	.suite_init = xfer_suite_init,
	.suite_exit = xfer_suite_exit,
	.test_cases = dma_xfer_cases,
};

kunit_test_suite(dma_xfer_suite);

MODULE_LICENSE("GPL");
