// SPDX-License-Identifier: GPL-2.0
/*
 * fsled, written another way: a char device of its own (a region, a cdev,
 * a class and a device node) instead of a misc device, and the single
 * open kept as a flag under the register lock instead of an atomic. The
 * kit's tests must pass it as they pass the reference solution.
 */
#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/bits.h>
#include <linux/fs.h>
#include <linux/io.h>
#include <linux/mod_devicetable.h>
#include <linux/module.h>
#include <linux/platform_device.h>
#include <linux/spinlock.h>
#include "fsled_ioctl.h"

#define FSLED_NAME		"fsled"
#define FSLED_NR_BANKS		3
#define GPIO_CON		0x0
#define GPIO_DAT		0x4
#define GPIO_CON_MASK(pin)	(0xfU << ((pin) * 4))
#define GPIO_CON_OUTPUT(pin)	(0x1U << ((pin) * 4))

/* Where each LED is wired: a bank (the resource's index) and a pin. */
static const struct {
	unsigned int bank;
	unsigned int pin;
} fsled_wiring[FSLED_NR_LEDS] = {
	[FSLED_LED2] = { 0, 7 },	/* GPX2_7 */
	[FSLED_LED3] = { 1, 0 },	/* GPX1_0 */
	[FSLED_LED4] = { 2, 4 },	/* GPF3_4 */
	[FSLED_LED5] = { 2, 5 },	/* GPF3_5 */
};

struct fsled {
	void __iomem *bank[FSLED_NR_BANKS];
	spinlock_t lock;		/* the registers, and busy */
	bool busy;			/* someone has the device open */
	dev_t devt;
	struct cdev cdev;
	struct class *cls;
};

/* Replace the bits of @mask in @reg by those of @val; keep the others. */
static void fsled_update(struct fsled *led, void __iomem *reg, u32 mask, u32 val)
{
	u32 old;

	spin_lock(&led->lock);
	old = readl(reg);
	writel((old & ~mask) | (val & mask), reg);
	spin_unlock(&led->lock);
}

static void fsled_set(struct fsled *led, unsigned int nr, bool on)
{
	void __iomem *dat = led->bank[fsled_wiring[nr].bank] + GPIO_DAT;
	u32 bit = BIT(fsled_wiring[nr].pin);

	fsled_update(led, dat, bit, on ? bit : 0);
}

static void fsled_all_off(struct fsled *led)
{
	unsigned int nr;

	for (nr = 0; nr < FSLED_NR_LEDS; nr++)
		fsled_set(led, nr, false);
}

static int fsled_open(struct inode *inode, struct file *filp)
{
	struct fsled *led = container_of(inode->i_cdev, struct fsled, cdev);
	bool was_busy;

	spin_lock(&led->lock);
	was_busy = led->busy;
	led->busy = true;
	spin_unlock(&led->lock);
	if (was_busy)
		return -EBUSY;
	filp->private_data = led;
	return nonseekable_open(inode, filp);
}

static int fsled_release(struct inode *inode, struct file *filp)
{
	struct fsled *led = filp->private_data;

	fsled_all_off(led);
	spin_lock(&led->lock);
	led->busy = false;
	spin_unlock(&led->lock);
	return 0;
}

static long fsled_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	struct fsled *led = filp->private_data;

	if (cmd != FSLED_ON && cmd != FSLED_OFF)
		return -ENOTTY;
	if (arg >= FSLED_NR_LEDS)
		return -EINVAL;
	fsled_set(led, arg, cmd == FSLED_ON);
	return 0;
}

static const struct file_operations fsled_fops = {
	.owner = THIS_MODULE,
	.open = fsled_open,
	.release = fsled_release,
	.unlocked_ioctl = fsled_ioctl,
	.llseek = no_llseek,
};

static int fsled_probe(struct platform_device *pdev)
{
	struct fsled *led;
	struct device *node;
	int ret;

	led = devm_kzalloc(&pdev->dev, sizeof(*led), GFP_KERNEL);
	if (!led)
		return -ENOMEM;
	spin_lock_init(&led->lock);

	for (unsigned int i = 0; i < FSLED_NR_BANKS; i++) {
		led->bank[i] = devm_platform_ioremap_resource(pdev, i);
		if (IS_ERR(led->bank[i]))
			return PTR_ERR(led->bank[i]);
	}

	fsled_all_off(led);
	for (unsigned int i = 0; i < FSLED_NR_LEDS; i++) {
		void __iomem *con = led->bank[fsled_wiring[i].bank] + GPIO_CON;
		unsigned int pin = fsled_wiring[i].pin;

		fsled_update(led, con, GPIO_CON_MASK(pin), GPIO_CON_OUTPUT(pin));
	}

	ret = alloc_chrdev_region(&led->devt, 0, 1, FSLED_NAME);
	if (ret)
		return ret;
	led->cls = class_create(THIS_MODULE, FSLED_NAME);
	if (IS_ERR(led->cls)) {
		ret = PTR_ERR(led->cls);
		goto free_region;
	}
	cdev_init(&led->cdev, &fsled_fops);
	led->cdev.owner = THIS_MODULE;
	ret = cdev_add(&led->cdev, led->devt, 1);
	if (ret)
		goto destroy_class;
	platform_set_drvdata(pdev, led);
	/* The node last: once it exists, users can open the device. */
	node = device_create(led->cls, &pdev->dev, led->devt, NULL, FSLED_NAME);
	if (IS_ERR(node)) {
		ret = PTR_ERR(node);
		goto del_cdev;
	}
	return 0;

del_cdev:
	cdev_del(&led->cdev);
destroy_class:
	class_destroy(led->cls);
free_region:
	unregister_chrdev_region(led->devt, 1);
	return ret;
}

static int fsled_remove(struct platform_device *pdev)
{
	struct fsled *led = platform_get_drvdata(pdev);

	/* The node first: nobody may open the device and switch an LED on. */
	device_destroy(led->cls, led->devt);
	cdev_del(&led->cdev);
	fsled_all_off(led);
	class_destroy(led->cls);
	unregister_chrdev_region(led->devt, 1);
	return 0;
}

/* The platform device that the kit's board.ko registers. */
static const struct platform_device_id fsled_ids[] = {
	{ FSLED_NAME },
	{ }
};
MODULE_DEVICE_TABLE(platform, fsled_ids);

/* The same banks described by a device tree node: common/fs4412-leds.dts. */
static const struct of_device_id fsled_of_ids[] = {
	{ .compatible = "farsight,fs4412-leds" },
	{ }
};
MODULE_DEVICE_TABLE(of, fsled_of_ids);

static struct platform_driver fsled_driver = {
	.driver = {
		.name = FSLED_NAME,
		.of_match_table = fsled_of_ids,
	},
	.id_table = fsled_ids,
	.probe = fsled_probe,
	.remove = fsled_remove,
};
module_platform_driver(fsled_driver);

MODULE_DESCRIPTION("FS4412 LEDs on ioremapped GPIO registers, as a char device of its own");
MODULE_LICENSE("GPL");
