/* SPDX-License-Identifier: GPL-2.0 */
/*
 * How wide the driver's accesses to a DAT register are. The board's banks
 * are plain memory (ivshmem), so writeb() where writel() is needed works
 * there and fails on the real GPIO block. The CPU's debug registers see
 * the width: data breakpoints on bytes 3, 1 and 0 of DAT, in the driver's
 * own mapping. The widest byte an instruction reaches gives its width: 3
 * for 32 bits, 1 for 16, 0 for 8. Real CPUs report every breakpoint an
 * access hits; QEMU's TCG reports only the first in debug register order,
 * so they are registered widest first. Hits are collected by instruction,
 * so a helper shared by CON and DAT counts only its DAT accesses.
 *
 * The driver's mapping is found by watching ioremap() while it probes.
 */
#ifndef FSLED_WIDTH_TEST_H
#define FSLED_WIDTH_TEST_H

#include <linux/hw_breakpoint.h>
#include <linux/kprobes.h>
#include <linux/perf_event.h>
#include "fsled_board_test.h"

#define FSLED_WIDTH_SITES	16

struct fsled_width_site {
	unsigned long ip;	/* the instruction after the access */
	unsigned int bytes;	/* which watched bytes of DAT it touched, one bit each */
};

static struct {
	struct fsled_hw *hw;
	void __iomem *mapped[FSLED_NR_BANKS];	/* the driver's mapping of each bank */
	raw_spinlock_t lock;
	struct fsled_width_site site[FSLED_WIDTH_SITES];
	unsigned int nr_sites;
	/* Narrow accesses already reported: one line serves every bank. */
	unsigned long reported[FSLED_WIDTH_SITES];
	unsigned int nr_reported;
} fsled_width;

struct fsled_width_call {
	u64 phys, size;		/* ioremap()'s arguments */
};

static int fsled_width_ioremap_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct fsled_width_call *call = (void *)ri->data;

	call->phys = regs_get_kernel_argument(regs, 0);
	call->size = regs_get_kernel_argument(regs, 1);
	return 0;
}

/* Note the bank that the returned mapping covers, if any. */
static int fsled_width_ioremap_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	void __iomem *addr = (void __iomem *)regs_return_value(regs);
	struct fsled_width_call *call = (void *)ri->data;
	unsigned int i;

	for (i = 0; addr && i < FSLED_NR_BANKS; i++) {
		struct resource *r = fsled_width.hw->res[i];

		if (call->phys <= r->start && r->end < call->phys + call->size)
			fsled_width.mapped[i] = addr + (r->start - call->phys);
	}
	return 0;
}

/* Run @fn (the driver's probe) and find where it mapped each bank. */
static inline int fsled_width_find_mappings(struct kunit *test, struct fsled_hw *hw,
					    int (*fn)(struct kunit *test))
{
	static const char *const variants[] = {
		"ioremap", "ioremap_cache", "ioremap_uc",
		"ioremap_wc", "ioremap_wt", "ioremap_prot",
	};
	struct kretprobe *rp = kunit_kcalloc(test, ARRAY_SIZE(variants), sizeof(*rp), GFP_KERNEL);
	struct kretprobe *rps[ARRAY_SIZE(variants)];
	unsigned int i, n = 0;
	int ret;

	KUNIT_ASSERT_NOT_NULL(test, rp);
	memset(fsled_width.mapped, 0, sizeof(fsled_width.mapped));
	fsled_width.nr_reported = 0;
	fsled_width.hw = hw;
	for (i = 0; i < ARRAY_SIZE(variants); i++) {
		rp[i].kp.symbol_name = variants[i];
		rp[i].entry_handler = fsled_width_ioremap_entry;
		rp[i].handler = fsled_width_ioremap_return;
		rp[i].data_size = sizeof(struct fsled_width_call);
		rp[i].maxactive = 4;
		/* Not every kernel has every variant out of line. */
		if (!register_kretprobe(&rp[i]))
			rps[n++] = &rp[i];
	}
	KUNIT_ASSERT_GT_MSG(test, n, 0U, "cannot watch ioremap()");
	/* @fn must not abort the case: the kretprobes live on its memory. */
	ret = fn(test);
	unregister_kretprobes(rps, n);
	return ret;
}

static void fsled_width_hit(struct perf_event *bp, struct perf_sample_data *data,
			    struct pt_regs *regs)
{
	unsigned int byte = (uintptr_t)bp->overflow_handler_context;
	unsigned long flags;
	unsigned int i;

	raw_spin_lock_irqsave(&fsled_width.lock, flags);
	for (i = 0; i < fsled_width.nr_sites; i++)
		if (fsled_width.site[i].ip == regs->ip)
			break;
	if (i == fsled_width.nr_sites && i < FSLED_WIDTH_SITES)
		fsled_width.site[fsled_width.nr_sites++].ip = regs->ip;
	if (i < FSLED_WIDTH_SITES)
		fsled_width.site[i].bytes |= BIT(byte);
	raw_spin_unlock_irqrestore(&fsled_width.lock, flags);
}

/*
 * Watch @bank's DAT in the driver's mapping while @fn runs,
 * and fail @test for each instruction that touched only some of them.
 */
static inline void fsled_width_watch(struct kunit *test, unsigned int bank,
				     void (*fn)(struct kunit *test, unsigned int bank))
{
	static const unsigned int watched[] = { 3, 1, 0 };	/* widest first */
	struct perf_event * __percpu *bp[ARRAY_SIZE(watched)] = {};
	struct perf_event_attr attr;
	unsigned int n, i;

	KUNIT_ASSERT_NOT_NULL_MSG(test, fsled_width.mapped[bank],
				  "probe did not ioremap() bank %s", fsled_bank_names[bank]);
	raw_spin_lock_init(&fsled_width.lock);
	fsled_width.nr_sites = 0;
	memset(fsled_width.site, 0, sizeof(fsled_width.site));
	for (n = 0; n < ARRAY_SIZE(bp); n++) {
		hw_breakpoint_init(&attr);
		attr.bp_addr = (unsigned long)fsled_width.mapped[bank] + FSLED_DAT + watched[n];
		attr.bp_len = HW_BREAKPOINT_LEN_1;
		attr.bp_type = HW_BREAKPOINT_RW;
		bp[n] = register_wide_hw_breakpoint(&attr, fsled_width_hit,
						    (void *)(uintptr_t)watched[n]);
		if (IS_ERR((void __force *)bp[n])) {
			long err = PTR_ERR((void __force *)bp[n]);

			while (n--)
				unregister_wide_hw_breakpoint(bp[n]);
			KUNIT_ASSERT_FAILURE(test, "data breakpoint on %s DAT: %ld",
					     fsled_bank_names[bank], err);
		}
	}
	fn(test, bank);
	for (n = 0; n < ARRAY_SIZE(bp); n++)
		unregister_wide_hw_breakpoint(bp[n]);

	KUNIT_EXPECT_GT_MSG(test, fsled_width.nr_sites, 0U,
			    "the driver never read or wrote %s DAT through its mapping",
			    fsled_bank_names[bank]);
	for (i = 0; i < fsled_width.nr_sites; i++) {
		unsigned int bits = 8 * fls(fsled_width.site[i].bytes);
		unsigned long ip = fsled_width.site[i].ip;
		unsigned int seen;

		if (bits == 32)
			continue;
		for (seen = 0; seen < fsled_width.nr_reported; seen++)
			if (fsled_width.reported[seen] == ip)
				break;
		if (seen < fsled_width.nr_reported)
			continue;
		if (fsled_width.nr_reported < FSLED_WIDTH_SITES)
			fsled_width.reported[fsled_width.nr_reported++] = ip;
		KUNIT_FAIL(test,
			   "%s DAT accessed %u bits wide just before %pS: the registers are 32 bits wide, use readl()/writel()",
			   fsled_bank_names[bank], bits, (void *)ip);
	}
}

#endif /* FSLED_WIDTH_TEST_H */
