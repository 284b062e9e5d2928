// SPDX-License-Identifier: GPL-2.0
/*
 * fsled, written another way: no devm, every bank claimed with
 * request_mem_region() and mapped with ioremap() by hand, goto unwinding,
 * a mutex for the read-modify-writes, and the state kept per bank. The
 * kit's tests must pass it as they pass the reference solution.
 */
#include <linux/fs.h>
#include <linux/io.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/platform_device.h>
#include <linux/slab.h>
#include "fsled_ioctl.h"

#define NR_BANKS	3

struct bank {
	struct resource *res;
	void __iomem *regs;	/* CON at 0, DAT at 4 */
};

struct leds {
	struct bank banks[NR_BANKS];
	struct mutex lock;	/* one read-modify-write at a time */
	atomic_t users;
	struct miscdevice misc;
};

static const u8 led_bank[FSLED_NR_LEDS] = { 0, 1, 2, 2 };
static const u8 led_pin[FSLED_NR_LEDS] = { 7, 0, 4, 5 };

static void leds_modify(struct leds *l, unsigned int led, unsigned int reg,
			u32 clear, u32 set)
{
	void __iomem *addr = l->banks[led_bank[led]].regs + reg;

	mutex_lock(&l->lock);
	writel((readl(addr) & ~clear) | set, addr);
	mutex_unlock(&l->lock);
}

static void leds_off(struct leds *l)
{
	unsigned int led;

	for (led = 0; led < FSLED_NR_LEDS; led++)
		leds_modify(l, led, 4, BIT(led_pin[led]), 0);
}

static int leds_open(struct inode *inode, struct file *filp)
{
	struct leds *l = container_of(filp->private_data, struct leds, misc);

	if (atomic_cmpxchg(&l->users, 0, 1))
		return -EBUSY;
	filp->private_data = l;
	return 0;
}

static int leds_release(struct inode *inode, struct file *filp)
{
	struct leds *l = filp->private_data;

	leds_off(l);
	atomic_set(&l->users, 0);
	return 0;
}

static long leds_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	struct leds *l = filp->private_data;

	switch (cmd) {
	case FSLED_ON:
		if (arg >= FSLED_NR_LEDS)
			return -EINVAL;
		leds_modify(l, arg, 4, 0, BIT(led_pin[arg]));
		return 0;
	case FSLED_OFF:
		if (arg >= FSLED_NR_LEDS)
			return -EINVAL;
		leds_modify(l, arg, 4, BIT(led_pin[arg]), 0);
		return 0;
	default:
		return -ENOTTY;
	}
}

static const struct file_operations leds_fops = {
	.owner = THIS_MODULE,
	.open = leds_open,
	.release = leds_release,
	.unlocked_ioctl = leds_ioctl,
};

static void leds_unmap(struct leds *l, unsigned int n)
{
	while (n--) {
		iounmap(l->banks[n].regs);
		release_mem_region(l->banks[n].res->start, resource_size(l->banks[n].res));
	}
}

static int leds_probe(struct platform_device *pdev)
{
	struct leds *l;
	unsigned int i, led;
	int ret;

	l = kzalloc(sizeof(*l), GFP_KERNEL);
	if (!l)
		return -ENOMEM;
	mutex_init(&l->lock);

	for (i = 0; i < NR_BANKS; i++) {
		struct bank *b = &l->banks[i];

		b->res = platform_get_resource(pdev, IORESOURCE_MEM, i);
		if (!b->res) {
			ret = -ENODEV;
			goto err_unmap;
		}
		if (!request_mem_region(b->res->start, resource_size(b->res), "fsled")) {
			ret = -EBUSY;
			goto err_unmap;
		}
		b->regs = ioremap(b->res->start, resource_size(b->res));
		if (!b->regs) {
			release_mem_region(b->res->start, resource_size(b->res));
			ret = -ENOMEM;
			goto err_unmap;
		}
	}

	leds_off(l);
	for (led = 0; led < FSLED_NR_LEDS; led++)
		leds_modify(l, led, 0, 0xfU << (led_pin[led] * 4), 0x1U << (led_pin[led] * 4));

	l->misc = (struct miscdevice){
		.minor = MISC_DYNAMIC_MINOR,
		.name = "fsled",
		.fops = &leds_fops,
		.parent = &pdev->dev,
	};
	ret = misc_register(&l->misc);
	if (ret)
		goto err_unmap;
	platform_set_drvdata(pdev, l);
	return 0;

err_unmap:
	leds_unmap(l, i);
	kfree(l);
	return ret;
}

static int leds_remove(struct platform_device *pdev)
{
	struct leds *l = platform_get_drvdata(pdev);

	misc_deregister(&l->misc);
	leds_off(l);
	leds_unmap(l, NR_BANKS);
	kfree(l);
	return 0;
}

static struct platform_driver leds_driver = {
	.driver.name = "fsled",
	.probe = leds_probe,
	.remove = leds_remove,
};

static int __init leds_init(void)
{
	return platform_driver_register(&leds_driver);
}

static void __exit leds_exit(void)
{
	platform_driver_unregister(&leds_driver);
}

module_init(leds_init);
module_exit(leds_exit);
MODULE_LICENSE("GPL");
