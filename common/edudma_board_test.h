/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the dma suites share: the board's "edu-dma" device as the tests see
 * it (its registers through their own mapping, its interrupt), and the
 * kernel's own accounts of DMA: the DMA-API debug entries in use, the
 * mappings it lists as pending, and the interrupt counts.
 */
#ifndef EDUDMA_BOARD_TEST_H
#define EDUDMA_BOARD_TEST_H

#include <linux/device.h>
#include <linux/fs.h>
#include <linux/io.h>
#include <linux/platform_device.h>
#include <linux/slab.h>
#include <linux/sizes.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <kunit/test.h>
#include "edudma_ioctl.h"
#include "kdkit.h"

#define EDU_TEST_IRQ_STATUS	0x24
#define EDU_TEST_IRQ_RAISE	0x60	/* ORs its value into the status, raises */
#define EDU_TEST_IRQ_ACK	0x64
#define EDU_TEST_IRQ_FOREIGN	0x1	/* a cause the driver never asks for */
#define EDU_TEST_IRQ_DMA	0x100	/* a DMA transfer ended */
#define EDU_TEST_DMA_BITS	28

struct edu_hw {
	struct platform_device *pdev;
	void __iomem *regs;	/* the tests' own mapping of the first page */
	int irq;
};

static inline struct edu_hw *edu_hw_get(struct kunit *test)
{
	struct edu_hw *hw = kunit_kzalloc(test, sizeof(*hw), GFP_KERNEL);
	struct resource *res;
	struct device *dev;

	KUNIT_ASSERT_NOT_NULL(test, hw);
	dev = bus_find_device_by_name(&platform_bus_type, NULL, "edu-dma");
	KUNIT_ASSERT_NOT_NULL_MSG(test, dev, "no edu-dma platform device: board.ko did not bind");
	hw->pdev = to_platform_device(dev);
	res = platform_get_resource(hw->pdev, IORESOURCE_MEM, 0);
	KUNIT_ASSERT_NOT_NULL(test, res);
	hw->regs = ioremap(res->start, PAGE_SIZE);
	KUNIT_ASSERT_TRUE_MSG(test, !!hw->regs, "the tests' ioremap of edu failed");
	hw->irq = platform_get_irq(hw->pdev, 0);
	KUNIT_ASSERT_GT(test, hw->irq, 0);
	return hw;
}

static inline void edu_hw_put(struct edu_hw *hw)
{
	if (!hw || !hw->pdev)
		return;
	if (hw->regs)
		iounmap(hw->regs);
	put_device(&hw->pdev->dev);
}

/*
 * Read a file whole into @buf (NUL-terminated) and return its length.
 * debugfs files have no read_iter for kernel_read(), and vfs_read() is not
 * exported: their bytes go through @scratch, EDU_SCRATCH bytes of the
 * case's user memory, by their own ->read.
 */
#define EDU_SCRATCH	SZ_64K

static inline ssize_t edu_read_file(char __user *scratch, const char *path, char *buf,
				    size_t size)
{
	struct file *f = filp_open(path, O_RDONLY, 0);
	size_t max = min_t(size_t, size - 1, EDU_SCRATCH);
	bool direct;
	loff_t pos = 0;
	ssize_t n, len = 0;

	if (IS_ERR(f))
		return PTR_ERR(f);
	direct = f->f_op->read_iter;
	while (len < max) {
		if (direct)
			n = kernel_read(f, buf + len, max - len, &pos);
		else
			n = f->f_op->read ?
			    f->f_op->read(f, scratch + len, max - len, &pos) : -EINVAL;
		if (n <= 0)
			break;
		len += n;
	}
	filp_close(f, NULL);
	if (!direct && copy_from_user(buf, scratch, len))
		return -EFAULT;
	buf[len] = '\0';
	return len;
}

/* A DMA-API debug counter, e.g. "num_free_entries" or "error_count". */
static inline u32 edu_dma_debug(struct kunit *test, char __user *scratch, const char *name)
{
	char path[64], buf[32];
	u32 val = 0;

	snprintf(path, sizeof(path), "/sys/kernel/debug/dma-api/%s", name);
	KUNIT_ASSERT_GT_MSG(test, edu_read_file(scratch, path, buf, sizeof(buf)), 0,
			    "cannot read %s", path);
	KUNIT_EXPECT_EQ(test, kstrtou32(strim(buf), 10, &val), 0);
	return val;
}

/* How many mappings or coherent buffers DMA-API debug lists for edu-dma. */
static inline int edu_pending_dma(struct kunit *test, char __user *scratch, struct edu_hw *hw)
{
	const size_t size = SZ_64K;
	char *buf = kvmalloc(size, GFP_KERNEL), *p, *line;
	ssize_t len;
	int n = 0;

	KUNIT_ASSERT_NOT_NULL(test, buf);
	len = edu_read_file(scratch, "/sys/kernel/debug/dma-api/dump", buf, size);
	if (len < 0)
		kvfree(buf);
	KUNIT_ASSERT_GE_MSG(test, len, 0, "cannot read the DMA-API debug dump");
	for (p = buf; (line = strsep(&p, "\n")) != NULL;)
		if (strstr(line, dev_name(&hw->pdev->dev)))
			n++;
	kvfree(buf);
	return n;
}

/* How many times the device's interrupt fired, from /proc/interrupts. */
static inline unsigned long edu_irq_count(struct kunit *test, char __user *scratch,
					  struct edu_hw *hw)
{
	const size_t size = SZ_16K;
	char *buf = kvmalloc(size, GFP_KERNEL), *p, *line, want[16];
	unsigned long total = 0, n;

	KUNIT_ASSERT_NOT_NULL(test, buf);
	snprintf(want, sizeof(want), "%d:", hw->irq);
	edu_read_file(scratch, "/proc/interrupts", buf, size);
	for (p = buf; (line = strsep(&p, "\n")) != NULL;) {
		char *tok;

		line = skip_spaces(line);
		tok = strsep(&line, " ");
		if (!tok || strcmp(tok, want))
			continue;
		while ((tok = strsep(&line, " ")) != NULL)
			if (*tok && !kstrtoul(tok, 10, &n))
				total += n;
			else if (*tok)
				break;
	}
	kvfree(buf);
	return total;
}

/*
 * How many of edu's interrupts no handler claimed: /proc/irq/N/spurious's
 * "unhandled" (a handler that returns IRQ_NONE for its own interrupt adds
 * one each time, until the kernel disables the line at 99900).
 */
static inline unsigned long edu_irq_unhandled(struct kunit *test, char __user *scratch,
					      struct edu_hw *hw)
{
	char path[40], buf[128], *at;
	unsigned long n = 0;

	snprintf(path, sizeof(path), "/proc/irq/%d/spurious", hw->irq);
	KUNIT_ASSERT_GT_MSG(test, edu_read_file(scratch, path, buf, sizeof(buf)), 0,
			    "cannot read %s", path);
	at = strstr(buf, "unhandled ");
	KUNIT_ASSERT_NOT_NULL_MSG(test, at, "%s has no unhandled count", path);
	at += strlen("unhandled ");
	*strchrnul(at, '\n') = '\0';
	KUNIT_EXPECT_EQ(test, kstrtoul(at, 10, &n), 0);
	return n;
}

#endif /* EDUDMA_BOARD_TEST_H */
