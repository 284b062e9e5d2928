// SPDX-License-Identifier: GPL-2.0
/*
 * fsled - the four LEDs of the FS4412 board, on Exynos4412 GPIO pins.
 *
 * The board describes the three GPIO banks the LEDs sit on as the memory
 * resources of the "fsled" platform device. Probe claims and maps each
 * bank, switches the four LEDs off and makes their pins outputs; then
 * /dev/fsled takes the FSLED_ON and FSLED_OFF ioctls of fsled_ioctl.h.
 *
 * A bank is a CON register, 4 bits a pin (0x1 = output), then a DAT
 * register, a bit a pin. The banks' other pins belong to other devices, so
 * every write is a read-modify-write that keeps their bits.
 */
#include <linux/atomic.h>
#include <linux/bits.h>
#include <linux/fs.h>
#include <linux/io.h>
#include <linux/miscdevice.h>
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
	spinlock_t lock;		/* makes each read-modify-write atomic */
	atomic_t available;		/* 1 while nobody has the device open */
	struct miscdevice misc;
};

/* Replace the bits of @mask in @reg by those of @val; keep the others. */
static void fsled_update(struct fsled *led, void __iomem *reg, u32 mask, u32 val)
{
	/* TODO 1: read, modify and write back, with no other update in between */
	u32 old;

	spin_lock(&led->lock);
	old = readl(reg);
	writel((old & ~mask) | (val & mask), reg);
	spin_unlock(&led->lock);
	/* END TODO 1 */
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
	/* misc_open() left our miscdevice in private_data. */
	struct fsled *led = container_of(filp->private_data, struct fsled, misc);

	/* TODO 2: let one opener in at a time; -EBUSY for the others */
	if (!atomic_dec_and_test(&led->available)) {
		atomic_inc(&led->available);
		return -EBUSY;
	}
	/* END TODO 2 */
	filp->private_data = led;
	return nonseekable_open(inode, filp);
}

static int fsled_release(struct inode *inode, struct file *filp)
{
	/* TODO 3: leave every LED off, and let the next opener in */
	struct fsled *led = filp->private_data;

	fsled_all_off(led);
	atomic_inc(&led->available);
	/* END TODO 3 */
	return 0;
}

static long fsled_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	/* TODO 4: FSLED_ON and FSLED_OFF; -ENOTTY, -EINVAL for bad input */
	struct fsled *led = filp->private_data;

	if (cmd != FSLED_ON && cmd != FSLED_OFF)
		return -ENOTTY;
	if (arg >= FSLED_NR_LEDS)
		return -EINVAL;
	fsled_set(led, arg, cmd == FSLED_ON);
	return 0;
	/* skel: return -ENOTTY; */
	/* END TODO 4 */
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

	led = devm_kzalloc(&pdev->dev, sizeof(*led), GFP_KERNEL);
	if (!led)
		return -ENOMEM;
	spin_lock_init(&led->lock);
	atomic_set(&led->available, 1);
	/* remove() finds the state here */
	platform_set_drvdata(pdev, led);

	/* TODO 5: claim and map each bank; devm undoes both on failure */
	for (unsigned int i = 0; i < FSLED_NR_BANKS; i++) {
		led->bank[i] = devm_platform_ioremap_resource(pdev, i);
		if (IS_ERR(led->bank[i]))
			return PTR_ERR(led->bank[i]);
	}
	/* END TODO 5 */

	/* TODO 6: LEDs off first, then their pins outputs: no flash at probe */
	fsled_all_off(led);
	for (unsigned int i = 0; i < FSLED_NR_LEDS; i++) {
		void __iomem *con = led->bank[fsled_wiring[i].bank] + GPIO_CON;
		unsigned int pin = fsled_wiring[i].pin;

		fsled_update(led, con, GPIO_CON_MASK(pin), GPIO_CON_OUTPUT(pin));
	}
	/* END TODO 6 */

	/* TODO 7: register /dev/fsled, last, once the hardware is ready */
	led->misc.minor = MISC_DYNAMIC_MINOR;
	led->misc.name = FSLED_NAME;
	led->misc.fops = &fsled_fops;
	led->misc.parent = &pdev->dev;
	return misc_register(&led->misc);
	/* skel: return -EOPNOTSUPP; */
	/* END TODO 7 */
}

static int fsled_remove(struct platform_device *pdev)
{
	struct fsled *led = platform_get_drvdata(pdev);

	/* TODO 8: remove /dev/fsled first: nobody may switch an LED on again */
	misc_deregister(&led->misc);
	/* END TODO 8 */
	fsled_all_off(led);
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

MODULE_DESCRIPTION("FS4412 LEDs on ioremapped GPIO registers");
MODULE_LICENSE("GPL");
