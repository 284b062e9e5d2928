// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit cases for edudma's probe and remove, error paths included. As in
 * fsled, the driver is reached by loading it and by unbinding and binding
 * the board's device, so that probe() and remove() run in the test's task
 * and fail-nth applies. What a driver holds is read from the kernel's own
 * accounts: DMA-API debug's entries and pending list, the interrupt's
 * handlers, and the allocations the task made.
 */
#include <linux/dma-mapping.h>
#include <linux/file.h>
#include <linux/interrupt.h>
#include <linux/kprobes.h>
#include <linux/uaccess.h>
#include <kunit/test.h>
#include "edudma_board_test.h"

struct probe_ctx {
	struct edu_hw *hw;
	struct device_driver *drv;
	char __user *scratch;
	u32 entries;		/* DMA-API debug entries free while unbound */
	bool loaded;
};

static int probe_init(struct kunit *test)
{
	struct probe_ctx *ctx = kunit_kzalloc(test, sizeof(*ctx), GFP_KERNEL);

	if (!ctx)
		return -ENOMEM;
	test->priv = ctx;
	ctx->hw = edu_hw_get(test);
	kdkit_umem_setup(test);
	ctx->scratch = kdkit_umem_alloc(test, EDU_SCRATCH);
	return 0;
}

static void probe_exit(struct kunit *test)
{
	struct probe_ctx *ctx = test->priv;

	if (ctx->loaded)
		kdkit_driver_exit();
	edu_hw_put(ctx->hw);
}

/* Load the module, which must bind the device; then unbind it. */
static void probe_load_unbound(struct kunit *test)
{
	struct probe_ctx *ctx = test->priv;

	ctx->entries = edu_dma_debug(test, ctx->scratch, "num_free_entries");
	ctx->drv = kdkit_driver_init_bound(test, &ctx->hw->pdev->dev, &ctx->loaded);
	device_release_driver(&ctx->hw->pdev->dev);
}

static int probe_bind(struct kunit *test)
{
	struct probe_ctx *ctx = test->priv;

	return device_driver_attach(ctx->drv, &ctx->hw->pdev->dev);
}

static void probe_unbind(struct kunit *test)
{
	struct probe_ctx *ctx = test->priv;

	device_release_driver(&ctx->hw->pdev->dev);
}

/* An unbound driver holds no DMA memory, no interrupt and no node. */
static void probe_expect_nothing_held(struct kunit *test, const char *when)
{
	struct probe_ctx *ctx = test->priv;
	u32 entries = edu_dma_debug(test, ctx->scratch, "num_free_entries");

	KUNIT_EXPECT_FALSE_MSG(test, kdkit_driver_bound(&ctx->hw->pdev->dev),
			       "%s: the device is still bound", when);
	/*
	 * DMA-API debug's dump walks all 16384 buckets of its hash under their
	 * locks (~30 ms on the strict kernel): read it only to explain a count
	 * that differs, not after every point of a sweep.
	 */
	if (entries != ctx->entries)
		KUNIT_FAIL(test,
			   "%s: DMA mappings or coherent buffers are left: %d entries, %d of them the device's",
			   when, (int)(ctx->entries - entries),
			   edu_pending_dma(test, ctx->scratch, ctx->hw));
	KUNIT_EXPECT_FALSE_MSG(test, irq_has_action(ctx->hw->irq),
			       "%s: the interrupt still has a handler", when);
	KUNIT_EXPECT_FALSE_MSG(test, kdkit_path_exists(EDUDMA_DEV), "%s: %s still exists",
			       when, EDUDMA_DEV);
}

static void probe_check_failure(struct kunit *test)
{
	probe_expect_nothing_held(test, "after a failed probe");
}

static void edudma_probe_sets_the_mask_edu_can_address(struct kunit *test)
{
	struct probe_ctx *ctx = test->priv;
	struct device *dev = &ctx->hw->pdev->dev;

	probe_load_unbound(test);
	kdkit_assert_probed(test, probe_bind(test), "on the unbound device");
	KUNIT_EXPECT_EQ_MSG(test, dma_get_mask(dev), DMA_BIT_MASK(EDU_TEST_DMA_BITS),
			    "edu has %d address lines: the streaming mask", EDU_TEST_DMA_BITS);
	KUNIT_EXPECT_EQ_MSG(test, dev->coherent_dma_mask, DMA_BIT_MASK(EDU_TEST_DMA_BITS),
			    "edu has %d address lines: the coherent mask", EDU_TEST_DMA_BITS);
	probe_unbind(test);
}

static void edudma_probe_unwinds_every_failure(struct kunit *test)
{
	const struct kdkit_sweep_ops ops = {
		.what = "probe",
		.up = probe_bind,
		.down = probe_unbind,
		.check = probe_check_failure,
		.any_error = true,
		.least = 7,
		.least_why = "sets up its state, registers, two buffers, IRQ and device",
	};

	probe_load_unbound(test);
	kdkit_sweep(test, &ops);
	/* After all that, a clean bind gives the device its node again. */
	kdkit_assert_probed(test, probe_bind(test), "after the sweep, with nothing failing");
	KUNIT_EXPECT_TRUE_MSG(test, kdkit_path_exists(EDUDMA_DEV),
			      "%s is missing after the sweep", EDUDMA_DEV);
	probe_unbind(test);
}

static void edudma_remove_leaves_nothing(struct kunit *test)
{
	probe_load_unbound(test);
	KUNIT_ASSERT_EQ(test, kdkit_leak_begin(), 0);
	kdkit_assert_probed(test, probe_bind(test), "on the unbound device");
	probe_unbind(test);
	kdkit_leak_expect_none(test, "probe, then remove");
	probe_expect_nothing_held(test, "after remove");
}

static void edudma_module_load_and_unload_leave_nothing(struct kunit *test)
{
	struct probe_ctx *ctx = test->priv;
	int ret;

	ctx->entries = edu_dma_debug(test, ctx->scratch, "num_free_entries");
	KUNIT_ASSERT_EQ(test, kdkit_leak_begin(), 0);
	ret = kdkit_driver_init();
	if (!ret) {
		kdkit_driver_exit();
		kdkit_expect_exit_left_nothing(test);
	}
	kdkit_leak_expect_none(test, "module load, then unload");
	KUNIT_EXPECT_EQ_MSG(test, ret, 0, "module init returned %d", ret);
	probe_expect_nothing_held(test, "after unload");
}

/*
 * The device's masks when probe first allocated DMA memory for it, and
 * the largest coherent buffer it asked for.
 */
static struct {
	struct task_struct *task;
	struct device *dev;
	bool allocated;
	u64 coherent_mask;
	size_t largest;
} alloc_watch;

static int alloc_watch_pre(struct kprobe *p, struct pt_regs *regs)
{
	struct device *dev = (struct device *)regs_get_kernel_argument(regs, 0);

	if (current != alloc_watch.task || dev != alloc_watch.dev)
		return 0;
	if (!alloc_watch.allocated) {
		alloc_watch.coherent_mask = dev->coherent_dma_mask;
		alloc_watch.allocated = true;
	}
	alloc_watch.largest = max_t(size_t, alloc_watch.largest, regs_get_kernel_argument(regs, 1));
	return 0;
}

/* The mask governs the allocation: it must be set first. */
static void edudma_probe_sets_the_mask_before_allocating(struct kunit *test)
{
	struct kprobe alloc = { .symbol_name = "dma_alloc_attrs", .pre_handler = alloc_watch_pre };
	struct probe_ctx *ctx = test->priv;
	int ret;

	probe_load_unbound(test);
	/* As the board made the device: the load's probe narrowed the masks. */
	*ctx->hw->pdev->dev.dma_mask = DMA_BIT_MASK(32);
	ctx->hw->pdev->dev.coherent_dma_mask = DMA_BIT_MASK(32);
	alloc_watch.task = current;
	alloc_watch.dev = &ctx->hw->pdev->dev;
	alloc_watch.allocated = false;
	alloc_watch.largest = 0;
	KUNIT_ASSERT_EQ(test, register_kprobe(&alloc), 0);
	ret = probe_bind(test);
	unregister_kprobe(&alloc);
	kdkit_assert_probed(test, ret, "on the unbound device");
	probe_unbind(test);
	KUNIT_ASSERT_TRUE_MSG(test, alloc_watch.allocated, "probe allocated no coherent buffer");
	KUNIT_EXPECT_EQ_MSG(test, alloc_watch.coherent_mask, DMA_BIT_MASK(EDU_TEST_DMA_BITS),
			    "the coherent buffer was allocated before the %d-bit mask was set",
			    EDU_TEST_DMA_BITS);
	/* Page rounding would hide a short buffer from the transfers. */
	KUNIT_EXPECT_GE_MSG(test, alloc_watch.largest, (size_t)EDUDMA_MAX_XFER,
			    "the coherent buffer has %zu bytes, fewer than the largest transfer (EDUDMA_MAX_XFER)",
			    alloc_watch.largest);
}

/* dma_set_mask() fails for the device while set: the platform can't do it. */
static struct {
	struct task_struct *task;
	struct device *dev;
	unsigned int failed;
} mask_fault;

static int mask_fault_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	*(bool *)ri->data = current == mask_fault.task &&
			    (struct device *)regs_get_kernel_argument(regs, 0) == mask_fault.dev;
	return 0;
}

static int mask_fault_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	if (*(bool *)ri->data) {
		regs_set_return_value(regs, -EIO);
		mask_fault.failed++;
	}
	return 0;
}

static void edudma_probe_fails_cleanly_without_a_mask(struct kunit *test)
{
	struct kretprobe fault = {
		.kp.symbol_name = "dma_set_mask",
		.entry_handler = mask_fault_entry,
		.handler = mask_fault_return,
		.data_size = sizeof(bool),
		.maxactive = 4,
	};
	struct probe_ctx *ctx = test->priv;
	int ret;

	probe_load_unbound(test);
	mask_fault.task = current;
	mask_fault.dev = &ctx->hw->pdev->dev;
	mask_fault.failed = 0;
	KUNIT_ASSERT_EQ(test, register_kretprobe(&fault), 0);
	ret = probe_bind(test);
	unregister_kretprobe(&fault);
	KUNIT_EXPECT_GT_MSG(test, mask_fault.failed, 0U, "probe never called dma_set_mask()");
	KUNIT_EXPECT_NE_MSG(test, ret, 0,
			    "probe succeeded though dma_set_mask() failed: check what it returns");
	if (!ret)
		probe_unbind(test);
	probe_expect_nothing_held(test, "after a probe without a DMA mask");
	/* And with the mask available again, it binds. */
	kdkit_assert_probed(test, probe_bind(test), "with the DMA mask available again");
}

/*
 * An interrupt may come the moment probe requests it (one left pending,
 * or a device already busy): all that the handler touches must be ready
 * before request_irq(), and the handler must acknowledge. A kretprobe
 * raises edu's interrupt as request_irq() returns for it.
 */
static struct {
	int irq;
	void __iomem *regs;
	bool raised;
} raise_watch;

static int raise_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	return (int)regs_get_kernel_argument(regs, 0) == raise_watch.irq ? 0 : 1;
}

static int raise_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	if (!regs_return_value(regs) && !raise_watch.raised) {
		raise_watch.raised = true;
		writel(EDU_TEST_IRQ_DMA, raise_watch.regs + EDU_TEST_IRQ_RAISE);
	}
	return 0;
}

static void edudma_probe_takes_an_interrupt_at_once(struct kunit *test)
{
	struct probe_ctx *ctx = test->priv;
	struct kretprobe rp = {
		.kp.symbol_name = "request_threaded_irq",
		.entry_handler = raise_entry,
		.handler = raise_return,
		.maxactive = 2,
	};
	u32 left;
	int ret;

	probe_load_unbound(test);
	raise_watch.irq = ctx->hw->irq;
	raise_watch.regs = ctx->hw->regs;
	raise_watch.raised = false;
	KUNIT_ASSERT_EQ(test, register_kretprobe(&rp), 0);
	ret = probe_bind(test);
	unregister_kretprobe(&rp);
	if (ret)
		KUNIT_FAIL(test, "probe returned %d, edu's interrupt raised once requested", ret);
	KUNIT_EXPECT_TRUE_MSG(test, raise_watch.raised, "probe never requested edu's interrupt");
	left = readl(ctx->hw->regs + EDU_TEST_IRQ_STATUS);
	KUNIT_EXPECT_EQ_MSG(test, left & EDU_TEST_IRQ_DMA, 0U,
			    "an interrupt that came as probe requested it was never acknowledged");
	writel(left, ctx->hw->regs + EDU_TEST_IRQ_ACK);
	probe_unbind(test);
}

static struct kunit_case dma_probe_cases[] = {
	KUNIT_CASE(edudma_probe_sets_the_mask_edu_can_address),
	KUNIT_CASE(edudma_probe_unwinds_every_failure),
	KUNIT_CASE(edudma_remove_leaves_nothing),
	KUNIT_CASE(edudma_module_load_and_unload_leave_nothing),
	KUNIT_CASE(edudma_probe_sets_the_mask_before_allocating),
	KUNIT_CASE(edudma_probe_fails_cleanly_without_a_mask),
	KUNIT_CASE(edudma_probe_takes_an_interrupt_at_once),
	{}
};

static struct kunit_suite dma_probe_suite = {
	.name = "dma_probe",
	.init = probe_init,
	.exit = probe_exit,
	.test_cases = dma_probe_cases,
};

kunit_test_suite(dma_probe_suite);

MODULE_LICENSE("GPL");
