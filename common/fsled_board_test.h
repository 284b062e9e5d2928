/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the fsled suites share: the board as the tests see it. They find
 * the "fsled" platform device that board.ko registers, map its three banks
 * for themselves (to seed and read the registers as the hardware has
 * them), and check what a driver leaves behind. Nothing here knows the
 * student's code beyond the module it is built into.
 */
#ifndef FSLED_BOARD_TEST_H
#define FSLED_BOARD_TEST_H

#include <linux/bits.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/platform_device.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <kunit/test.h>
#include "fsled_ioctl.h"
#include "kdkit.h"

#define FSLED_NR_BANKS		3
#define FSLED_CON		0x0
#define FSLED_DAT		0x4

/* The FS4412's wiring, from its schematic: bank (resource index) and pin. */
static const struct {
	unsigned int bank, pin;
} fsled_pins[FSLED_NR_LEDS] = {
	[FSLED_LED2] = { 0, 7 }, [FSLED_LED3] = { 1, 0 },
	[FSLED_LED4] = { 2, 4 }, [FSLED_LED5] = { 2, 5 },
};

static const char *const fsled_bank_names[FSLED_NR_BANKS] = { "GPX2", "GPX1", "GPF3" };

struct fsled_hw {
	struct platform_device *pdev;		/* the board's "fsled" device */
	struct resource *res[FSLED_NR_BANKS];
	void __iomem *bank[FSLED_NR_BANKS];	/* the tests' own mappings */
};

struct fsled_regs {
	u32 con[FSLED_NR_BANKS], dat[FSLED_NR_BANKS];
};

/* Find the board's device and map its banks; undone by fsled_hw_put(). */
static inline struct fsled_hw *fsled_hw_get(struct kunit *test)
{
	struct fsled_hw *hw = kunit_kzalloc(test, sizeof(*hw), GFP_KERNEL);
	struct device *dev;
	unsigned int i;

	KUNIT_ASSERT_NOT_NULL(test, hw);
	dev = bus_find_device_by_name(&platform_bus_type, NULL, "fsled");
	KUNIT_ASSERT_NOT_NULL_MSG(test, dev, "no fsled platform device: board.ko did not bind");
	hw->pdev = to_platform_device(dev);
	for (i = 0; i < FSLED_NR_BANKS; i++) {
		hw->res[i] = platform_get_resource(hw->pdev, IORESOURCE_MEM, i);
		KUNIT_ASSERT_NOT_NULL(test, hw->res[i]);
		hw->bank[i] = ioremap(hw->res[i]->start, resource_size(hw->res[i]));
		KUNIT_ASSERT_TRUE_MSG(test, !!hw->bank[i], "the tests' ioremap of %s failed",
				      fsled_bank_names[i]);
	}
	return hw;
}

static inline void fsled_hw_put(struct fsled_hw *hw)
{
	unsigned int i;

	if (!hw || !hw->pdev)
		return;
	for (i = 0; i < FSLED_NR_BANKS; i++)
		if (hw->bank[i])
			iounmap(hw->bank[i]);
	put_device(&hw->pdev->dev);
}

static inline void fsled_regs_read(struct fsled_hw *hw, struct fsled_regs *r)
{
	unsigned int i;

	for (i = 0; i < FSLED_NR_BANKS; i++) {
		r->con[i] = readl(hw->bank[i] + FSLED_CON);
		r->dat[i] = readl(hw->bank[i] + FSLED_DAT);
	}
}

static inline void fsled_regs_write(struct fsled_hw *hw, const struct fsled_regs *r)
{
	unsigned int i;

	for (i = 0; i < FSLED_NR_BANKS; i++) {
		writel(r->con[i], hw->bank[i] + FSLED_CON);
		writel(r->dat[i], hw->bank[i] + FSLED_DAT);
	}
}

static inline bool fsled_led_is_on(struct fsled_hw *hw, unsigned int led)
{
	return readl(hw->bank[fsled_pins[led].bank] + FSLED_DAT) & BIT(fsled_pins[led].pin);
}

/* Expect @got == @want register by register, naming what differs. */
static inline void fsled_expect_regs(struct kunit *test, const struct fsled_regs *got,
				     const struct fsled_regs *want, const char *when)
{
	unsigned int i;

	for (i = 0; i < FSLED_NR_BANKS; i++) {
		KUNIT_EXPECT_EQ_MSG(test, got->con[i], want->con[i],
				    "%s: %s CON is %#010x, expected %#010x (bits %#010x differ)",
				    when, fsled_bank_names[i], got->con[i], want->con[i],
				    got->con[i] ^ want->con[i]);
		KUNIT_EXPECT_EQ_MSG(test, got->dat[i], want->dat[i],
				    "%s: %s DAT is %#010x, expected %#010x (bits %#010x differ)",
				    when, fsled_bank_names[i], got->dat[i], want->dat[i],
				    got->dat[i] ^ want->dat[i]);
	}
}

/*
 * How many ioremap()s of the banks exist, by anyone, from /proc/vmallocinfo:
 * each mapping is one line with its physical address ("phys=0x...").
 */
static inline int fsled_count_mappings(struct kunit *test, struct fsled_hw *hw)
{
	const size_t size = SZ_256K;
	char *buf = kvmalloc(size, GFP_KERNEL), *line, *p;
	struct file *f;
	loff_t pos = 0;
	ssize_t n, len = 0;
	int count = 0;
	unsigned int i;
	u64 phys;

	KUNIT_ASSERT_NOT_NULL(test, buf);
	f = filp_open("/proc/vmallocinfo", O_RDONLY, 0);
	if (IS_ERR(f))
		kvfree(buf);
	KUNIT_ASSERT_FALSE_MSG(test, IS_ERR(f), "open /proc/vmallocinfo: %ld", PTR_ERR(f));
	while (len < size - 1 && (n = kernel_read(f, buf + len, size - 1 - len, &pos)) > 0)
		len += n;
	filp_close(f, NULL);
	buf[len] = '\0';
	for (p = buf; (line = strsep(&p, "\n")) != NULL;) {
		char *at = strstr(line, " phys=0x");
		char *end;

		if (!at)
			continue;
		end = strchrnul(at + 8, ' ');
		*end = '\0';
		if (kstrtou64(at + 8, 16, &phys))
			continue;
		for (i = 0; i < FSLED_NR_BANKS; i++) {
			if (phys <= hw->res[i]->end && phys + PAGE_SIZE > hw->res[i]->start) {
				count++;
				break;
			}
		}
	}
	kvfree(buf);
	return count;
}

/* The driver must leave no claim on any bank: try to claim each. */
static inline void fsled_expect_banks_free(struct kunit *test, struct fsled_hw *hw,
					   const char *when)
{
	unsigned int i;

	for (i = 0; i < FSLED_NR_BANKS; i++) {
		struct resource *r = request_mem_region(hw->res[i]->start,
							resource_size(hw->res[i]), "kdkit-check");

		if (!r)
			KUNIT_FAIL(test, "%s: bank %s is still claimed (see /proc/iomem)", when,
				   fsled_bank_names[i]);
		else
			release_mem_region(hw->res[i]->start, resource_size(hw->res[i]));
	}
}

static inline void fsled_expect_no_node(struct kunit *test, const char *when)
{
	KUNIT_EXPECT_FALSE_MSG(test, kdkit_path_exists(FSLED_DEV), "%s: %s still exists",
			       when, FSLED_DEV);
}

#endif /* FSLED_BOARD_TEST_H */
