// SPDX-License-Identifier: GPL-2.0
/*
 * edudma, written another way: no devm, goto unwinding in probe and the
 * reverse in remove, a one-entry scatterlist (dma_map_sg) for the
 * streaming path, and the device polled for its status in the handler's
 * way. The kit's tests must pass it as they pass the reference solution.
 */
#include <linux/completion.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/platform_device.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include "edudma_ioctl.h"

enum { REG_ID = 0x00, REG_STATUS = 0x24, REG_ACK = 0x64, REG_SRC = 0x80,
       REG_DST = 0x88, REG_COUNT = 0x90, REG_CMD = 0x98 };

struct edu {
	struct resource *res;
	void __iomem *regs;
	int irq;
	void *cbuf;
	dma_addr_t cbuf_bus;
	void *sbuf;
	struct completion done;
	struct mutex lock;
	bool streaming;
	struct miscdevice misc;
	struct device *dev;
};

static irqreturn_t edu_isr(int irq, void *arg)
{
	struct edu *e = arg;
	u32 st = readl(e->regs + REG_STATUS);

	if (!st)
		return IRQ_NONE;
	writel(st, e->regs + REG_ACK);
	if (st & 0x100)
		complete(&e->done);
	return IRQ_HANDLED;
}

static int edu_xfer(struct edu *e, u64 bus, u32 len, bool to_ram)
{
	reinit_completion(&e->done);
	writeq(to_ram ? 0x40000 : bus, e->regs + REG_SRC);
	writeq(to_ram ? bus : 0x40000, e->regs + REG_DST);
	writeq(len, e->regs + REG_COUNT);
	writeq(1 | 4 | (to_ram ? 2 : 0), e->regs + REG_CMD);
	return wait_for_completion_timeout(&e->done, HZ) ? 0 : -ETIMEDOUT;
}

static int edu_sg(struct edu *e, void *buf, u32 len, enum dma_data_direction dir)
{
	struct scatterlist sg;
	int ret;

	sg_init_one(&sg, buf, len);
	if (!dma_map_sg(e->dev, &sg, 1, dir))
		return -ENOMEM;
	ret = edu_xfer(e, sg_dma_address(&sg), len, dir == DMA_FROM_DEVICE);
	if (!ret && dir == DMA_FROM_DEVICE)
		dma_sync_sg_for_cpu(e->dev, &sg, 1, dir);
	dma_unmap_sg(e->dev, &sg, 1, dir);
	return ret;
}

static ssize_t edu_write(struct file *f, const char __user *ubuf, size_t len, loff_t *off)
{
	struct edu *e = container_of(f->private_data, struct edu, misc);
	void *buf;
	int ret;

	if (len > EDUDMA_MAX_XFER)
		return -EINVAL;
	if (!len)
		return 0;
	mutex_lock(&e->lock);
	buf = e->streaming ? e->sbuf : e->cbuf;
	if (copy_from_user(buf, ubuf, len))
		ret = -EFAULT;
	else if (e->streaming)
		ret = edu_sg(e, buf, len, DMA_TO_DEVICE);
	else
		ret = edu_xfer(e, e->cbuf_bus, len, false);
	mutex_unlock(&e->lock);
	return ret ?: len;
}

static ssize_t edu_read(struct file *f, char __user *ubuf, size_t len, loff_t *off)
{
	struct edu *e = container_of(f->private_data, struct edu, misc);
	void *buf;
	int ret;

	if (len > EDUDMA_MAX_XFER)
		return -EINVAL;
	if (!len)
		return 0;
	mutex_lock(&e->lock);
	buf = e->streaming ? e->sbuf : e->cbuf;
	if (e->streaming)
		ret = edu_sg(e, buf, len, DMA_FROM_DEVICE);
	else
		ret = edu_xfer(e, e->cbuf_bus, len, true);
	if (!ret && copy_to_user(ubuf, buf, len))
		ret = -EFAULT;
	mutex_unlock(&e->lock);
	return ret ?: len;
}

static long edu_ioctl(struct file *f, unsigned int cmd, unsigned long arg)
{
	struct edu *e = container_of(f->private_data, struct edu, misc);
	u32 val;

	if (cmd == EDUDMA_GET_PATH) {
		val = e->streaming ? EDUDMA_STREAMING : EDUDMA_COHERENT;
		return put_user(val, (u32 __user *)arg);
	}
	if (cmd != EDUDMA_SET_PATH)
		return -ENOTTY;
	if (get_user(val, (u32 __user *)arg))
		return -EFAULT;
	if (val > EDUDMA_STREAMING)
		return -EINVAL;
	mutex_lock(&e->lock);
	e->streaming = val == EDUDMA_STREAMING;
	mutex_unlock(&e->lock);
	return 0;
}

static const struct file_operations edu_fops = {
	.owner = THIS_MODULE,
	.read = edu_read,
	.write = edu_write,
	.unlocked_ioctl = edu_ioctl,
};

static int edu_probe(struct platform_device *pdev)
{
	struct edu *e;
	int ret;

	e = kzalloc(sizeof(*e), GFP_KERNEL);
	if (!e)
		return -ENOMEM;
	e->dev = &pdev->dev;
	init_completion(&e->done);
	mutex_init(&e->lock);

	e->res = platform_get_resource(pdev, IORESOURCE_MEM, 0);
	e->irq = platform_get_irq(pdev, 0);
	if (!e->res || e->irq < 0) {
		ret = -ENODEV;
		goto free_e;
	}
	if (!request_mem_region(e->res->start, resource_size(e->res), "edudma")) {
		ret = -EBUSY;
		goto free_e;
	}
	e->regs = ioremap(e->res->start, resource_size(e->res));
	if (!e->regs) {
		ret = -ENOMEM;
		goto release;
	}
	if ((readl(e->regs + REG_ID) & 0xff) != 0xed) {
		ret = -ENODEV;
		goto unmap;
	}
	ret = dma_set_mask_and_coherent(e->dev, DMA_BIT_MASK(28));
	if (ret)
		goto unmap;
	e->cbuf = dma_alloc_coherent(e->dev, PAGE_SIZE, &e->cbuf_bus, GFP_KERNEL);
	if (!e->cbuf) {
		ret = -ENOMEM;
		goto unmap;
	}
	e->sbuf = kmalloc(PAGE_SIZE, GFP_KERNEL);
	if (!e->sbuf) {
		ret = -ENOMEM;
		goto free_coherent;
	}
	ret = request_irq(e->irq, edu_isr, 0, "edudma", e);
	if (ret)
		goto free_sbuf;
	e->misc = (struct miscdevice){ .minor = MISC_DYNAMIC_MINOR, .name = "edudma",
				       .fops = &edu_fops, .parent = e->dev };
	ret = misc_register(&e->misc);
	if (ret)
		goto free_irq;
	platform_set_drvdata(pdev, e);
	return 0;

free_irq:
	free_irq(e->irq, e);
free_sbuf:
	kfree(e->sbuf);
free_coherent:
	dma_free_coherent(e->dev, PAGE_SIZE, e->cbuf, e->cbuf_bus);
unmap:
	iounmap(e->regs);
release:
	release_mem_region(e->res->start, resource_size(e->res));
free_e:
	kfree(e);
	return ret;
}

static int edu_remove(struct platform_device *pdev)
{
	struct edu *e = platform_get_drvdata(pdev);

	misc_deregister(&e->misc);
	free_irq(e->irq, e);
	kfree(e->sbuf);
	dma_free_coherent(e->dev, PAGE_SIZE, e->cbuf, e->cbuf_bus);
	iounmap(e->regs);
	release_mem_region(e->res->start, resource_size(e->res));
	kfree(e);
	return 0;
}

static struct platform_driver edu_driver = {
	.driver.name = "edu-dma",
	.probe = edu_probe,
	.remove = edu_remove,
};
module_platform_driver(edu_driver);
MODULE_LICENSE("GPL");
