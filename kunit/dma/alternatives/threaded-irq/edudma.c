// SPDX-License-Identifier: GPL-2.0
/*
 * edudma, written another way: a threaded interrupt handler. The hard
 * handler only wakes its thread, which acknowledges edu and then
 * completes the transfer. Otherwise the reference solution. The kit's
 * tests must pass it as they pass the reference.
 */
#include <linux/completion.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/miscdevice.h>
#include <linux/mod_devicetable.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/platform_device.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include "edudma_ioctl.h"

/* edu's registers (QEMU docs/specs/edu.rst). */
#define EDU_ID			0x00	/* 0xRRrr00ed: major, minor, 0xed */
#define EDU_IRQ_STATUS		0x24
#define EDU_IRQ_ACK		0x64
#define EDU_DMA_SRC		0x80
#define EDU_DMA_DST		0x88
#define EDU_DMA_COUNT		0x90
#define EDU_DMA_CMD		0x98
#define EDU_CMD_START		BIT(0)
#define EDU_CMD_TO_RAM		BIT(1)
#define EDU_CMD_IRQ		BIT(2)
#define EDU_IRQ_DMA		0x100
#define EDU_BUF_ADDR		0x40000	/* the buffer, in edu's own address space */
#define EDU_DMA_BITS		28	/* edu drives only 28 address lines */
#define EDU_TIMEOUT_MS		1000

struct edudma {
	struct device *dev;
	void __iomem *regs;
	void *coherent;			/* the coherent path's buffer */
	dma_addr_t coherent_dma;
	void *stream;			/* the streaming path's buffer */
	struct completion done;		/* the interrupt signals it */
	struct mutex lock;		/* one transfer at a time; guards path */
	u32 path;
	struct miscdevice misc;
};

/*
 * The hard handler only checks that the interrupt is edu's DMA one and
 * wakes the thread; edu's line stays masked (IRQF_ONESHOT) until the
 * thread has acknowledged it.
 */
static irqreturn_t edudma_hardirq(int irq, void *data)
{
	struct edudma *ed = data;

	return readl(ed->regs + EDU_IRQ_STATUS) & EDU_IRQ_DMA ? IRQ_WAKE_THREAD : IRQ_NONE;
}

static irqreturn_t edudma_thread(int irq, void *data)
{
	struct edudma *ed = data;

	writel(readl(ed->regs + EDU_IRQ_STATUS), ed->regs + EDU_IRQ_ACK);
	complete(&ed->done);
	return IRQ_HANDLED;
}

/* Copy @len bytes between bus address @addr and edu's buffer, and wait. */
static int edudma_run(struct edudma *ed, dma_addr_t addr, size_t len, bool to_device)
{
	reinit_completion(&ed->done);
	writeq(to_device ? addr : EDU_BUF_ADDR, ed->regs + EDU_DMA_SRC);
	writeq(to_device ? EDU_BUF_ADDR : addr, ed->regs + EDU_DMA_DST);
	writeq(len, ed->regs + EDU_DMA_COUNT);
	writeq(EDU_CMD_START | EDU_CMD_IRQ | (to_device ? 0 : EDU_CMD_TO_RAM),
	       ed->regs + EDU_DMA_CMD);
	if (!wait_for_completion_timeout(&ed->done, msecs_to_jiffies(EDU_TIMEOUT_MS)))
		return -ETIMEDOUT;
	return 0;
}

static int edudma_stream_to_device(struct edudma *ed, const char __user *buf, size_t len)
{
	dma_addr_t addr;
	int ret;

	if (copy_from_user(ed->stream, buf, len))
		return -EFAULT;
	addr = dma_map_single(ed->dev, ed->stream, len, DMA_TO_DEVICE);
	if (dma_mapping_error(ed->dev, addr))
		return -ENOMEM;
	ret = edudma_run(ed, addr, len, true);
	dma_unmap_single(ed->dev, addr, len, DMA_TO_DEVICE);
	return ret;
}

static int edudma_stream_from_device(struct edudma *ed, char __user *buf, size_t len)
{
	dma_addr_t addr;
	int ret;

	addr = dma_map_single(ed->dev, ed->stream, len, DMA_FROM_DEVICE);
	if (dma_mapping_error(ed->dev, addr))
		return -ENOMEM;
	ret = edudma_run(ed, addr, len, false);
	if (!ret) {
		/* The CPU may look at the buffer only now. */
		dma_sync_single_for_cpu(ed->dev, addr, len, DMA_FROM_DEVICE);
		if (copy_to_user(buf, ed->stream, len))
			ret = -EFAULT;
	}
	dma_unmap_single(ed->dev, addr, len, DMA_FROM_DEVICE);
	return ret;
}

static struct edudma *edudma_of(struct file *filp)
{
	return container_of(filp->private_data, struct edudma, misc);
}

static ssize_t edudma_write(struct file *filp, const char __user *buf, size_t len,
			    loff_t *ppos)
{
	struct edudma *ed = edudma_of(filp);
	int ret;

	if (len > EDUDMA_MAX_XFER)
		return -EINVAL;
	if (!len)
		return 0;
	mutex_lock(&ed->lock);
	if (ed->path == EDUDMA_STREAMING)
		ret = edudma_stream_to_device(ed, buf, len);
	else if (copy_from_user(ed->coherent, buf, len))
		ret = -EFAULT;
	else
		ret = edudma_run(ed, ed->coherent_dma, len, true);
	mutex_unlock(&ed->lock);
	return ret ? ret : len;
}

static ssize_t edudma_read(struct file *filp, char __user *buf, size_t len, loff_t *ppos)
{
	struct edudma *ed = edudma_of(filp);
	int ret;

	if (len > EDUDMA_MAX_XFER)
		return -EINVAL;
	if (!len)
		return 0;
	mutex_lock(&ed->lock);
	if (ed->path == EDUDMA_STREAMING) {
		ret = edudma_stream_from_device(ed, buf, len);
	} else {
		ret = edudma_run(ed, ed->coherent_dma, len, false);
		if (!ret && copy_to_user(buf, ed->coherent, len))
			ret = -EFAULT;
	}
	mutex_unlock(&ed->lock);
	return ret ? ret : len;
}

static long edudma_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	struct edudma *ed = edudma_of(filp);
	u32 __user *uarg = (u32 __user *)arg;
	u32 path;
	int ret = 0;

	switch (cmd) {
	case EDUDMA_SET_PATH:
		if (get_user(path, uarg))
			return -EFAULT;
		if (path != EDUDMA_COHERENT && path != EDUDMA_STREAMING)
			return -EINVAL;
		mutex_lock(&ed->lock);
		ed->path = path;
		mutex_unlock(&ed->lock);
		return 0;
	case EDUDMA_GET_PATH:
		mutex_lock(&ed->lock);
		path = ed->path;
		mutex_unlock(&ed->lock);
		if (put_user(path, uarg))
			ret = -EFAULT;
		return ret;
	default:
		return -ENOTTY;
	}
}

static const struct file_operations edudma_fops = {
	.owner = THIS_MODULE,
	.open = nonseekable_open,
	.read = edudma_read,
	.write = edudma_write,
	.unlocked_ioctl = edudma_ioctl,
	.llseek = no_llseek,
};

static int edudma_probe(struct platform_device *pdev)
{
	struct device *dev = &pdev->dev;
	int irq = platform_get_irq(pdev, 0);
	struct edudma *ed;
	int ret;
	u32 id;

	if (irq < 0)
		return irq;

	ed = devm_kzalloc(dev, sizeof(*ed), GFP_KERNEL);
	if (!ed)
		return -ENOMEM;
	ed->dev = dev;
	init_completion(&ed->done);
	mutex_init(&ed->lock);

	ed->regs = devm_platform_ioremap_resource(pdev, 0);
	if (IS_ERR(ed->regs))
		return PTR_ERR(ed->regs);
	id = readl(ed->regs + EDU_ID);
	if ((id & 0xff) != 0xed)
		return dev_err_probe(dev, -ENODEV, "not an edu device (id %#x)\n", id);

	ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(EDU_DMA_BITS));
	if (ret)
		return dev_err_probe(dev, ret, "no usable %d-bit DMA mask\n", EDU_DMA_BITS);

	ed->coherent = dmam_alloc_coherent(dev, EDUDMA_MAX_XFER, &ed->coherent_dma, GFP_KERNEL);
	if (!ed->coherent)
		return -ENOMEM;
	/* kmalloc memory can be mapped for DMA; the stack or vmalloc cannot. */
	ed->stream = devm_kmalloc(dev, EDUDMA_MAX_XFER, GFP_KERNEL);
	if (!ed->stream)
		return -ENOMEM;

	/* The handler may run from here on: everything it touches is ready. */
	ret = devm_request_threaded_irq(dev, irq, edudma_hardirq, edudma_thread, IRQF_ONESHOT,
					dev_name(dev), ed);
	if (ret)
		return ret;

	ed->misc.minor = MISC_DYNAMIC_MINOR;
	ed->misc.name = "edudma";
	ed->misc.fops = &edudma_fops;
	ed->misc.parent = dev;
	platform_set_drvdata(pdev, ed);
	ret = misc_register(&ed->misc);
	if (ret)
		dev_err(dev, "cannot register /dev/edudma: %d\n", ret);
	return ret;
}

static int edudma_remove(struct platform_device *pdev)
{
	struct edudma *ed = platform_get_drvdata(pdev);

	/* devm frees the IRQ, then the buffers, then the mapping. */
	misc_deregister(&ed->misc);
	return 0;
}

static const struct platform_device_id edudma_ids[] = {
	{ "edu-dma" },
	{ }
};
MODULE_DEVICE_TABLE(platform, edudma_ids);

/* The same driver, bound from a device tree node. */
static const struct of_device_id edudma_of_ids[] = {
	{ .compatible = "myvendor,mydevice" },
	{ }
};
MODULE_DEVICE_TABLE(of, edudma_of_ids);

static struct platform_driver edudma_driver = {
	.driver = {
		.name = "edudma",
		.of_match_table = edudma_of_ids,
	},
	.id_table = edudma_ids,
	.probe = edudma_probe,
	.remove = edudma_remove,
};
module_platform_driver(edudma_driver);

MODULE_DESCRIPTION("DMA to and from QEMU's edu device, coherent and streaming");
MODULE_LICENSE("GPL");
