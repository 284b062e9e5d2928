// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit cases for /dev/fsled: its ioctls, single open and release, called
 * through the file as a process would call them. Every case loads a fresh
 * driver, which binds the board's device, and opens the node once; the
 * registers are read through the tests' own mapping of the banks.
 */
#include <linux/file.h>
#include <linux/random.h>
#include <kunit/test.h>
#include "fsled_board_test.h"
#include "fsled_width_test.h"

struct ioctl_ctx {
	struct fsled_hw *hw;
	struct file *filp;
	bool loaded;
};

static struct file *ioctl_open(void)
{
	return filp_open(FSLED_DEV, O_RDWR, 0);
}

static long ioctl_call(struct file *filp, unsigned int cmd, unsigned long arg)
{
	if (!filp->f_op->unlocked_ioctl)
		return -ENOTTY;
	return filp->f_op->unlocked_ioctl(filp, cmd, arg);
}

static int ioctl_test_init(struct kunit *test)
{
	struct ioctl_ctx *ctx = kunit_kzalloc(test, sizeof(*ctx), GFP_KERNEL);
	int ret;

	if (!ctx)
		return -ENOMEM;
	test->priv = ctx;
	ctx->hw = fsled_hw_get(test);
	ret = kdkit_driver_init();
	if (ret) {
		kunit_err(test, "module init returned %d", ret);
		return ret;
	}
	ctx->loaded = true;
	if (!kdkit_driver_bound(&ctx->hw->pdev->dev)) {
		ret = kdkit_probe_error(&ctx->hw->pdev->dev);
		kunit_err(test, "module init did not bind the fsled device: its probe returned %d",
			  ret);
		return ret;
	}
	ctx->filp = ioctl_open();
	if (IS_ERR(ctx->filp)) {
		kunit_err(test, "open %s: %ld", FSLED_DEV, PTR_ERR(ctx->filp));
		return PTR_ERR(ctx->filp);
	}
	return 0;
}

static void ioctl_test_exit(struct kunit *test)
{
	struct ioctl_ctx *ctx = test->priv;

	if (!IS_ERR_OR_NULL(ctx->filp))
		kdkit_close(ctx->filp);
	if (ctx->loaded)
		kdkit_driver_exit();
	fsled_hw_put(ctx->hw);
}

/* Random bits on every pin but the LEDs', which keep what probe set. */
static void ioctl_seed_other_pins(struct fsled_hw *hw, struct fsled_regs *regs)
{
	struct fsled_regs seeded;
	unsigned int i;

	fsled_regs_read(hw, regs);
	for (i = 0; i < FSLED_NR_BANKS; i++) {
		u32 mask = 0;
		unsigned int led;

		for (led = 0; led < FSLED_NR_LEDS; led++)
			if (fsled_pins[led].bank == i)
				mask |= BIT(fsled_pins[led].pin);
		seeded.con[i] = regs->con[i];
		seeded.dat[i] = (get_random_u32() & ~mask) | (regs->dat[i] & mask);
	}
	fsled_regs_write(hw, &seeded);
	*regs = seeded;
}

static void fsled_on_and_off_change_one_bit(struct kunit *test)
{
	struct ioctl_ctx *ctx = test->priv;
	struct fsled_regs base, want, got;
	unsigned int led, i;
	char when[32];

	ioctl_seed_other_pins(ctx->hw, &base);
	for (led = 0; led < FSLED_NR_LEDS; led++) {
		long ret;

		want = base;
		want.dat[fsled_pins[led].bank] |= BIT(fsled_pins[led].pin);
		/* Twice on is still on. */
		for (i = 0; i < 2; i++) {
			ret = ioctl_call(ctx->filp, FSLED_ON, led);
			KUNIT_EXPECT_EQ_MSG(test, ret, 0L, "FSLED_ON %u", led);
			fsled_regs_read(ctx->hw, &got);
			snprintf(when, sizeof(when), "after FSLED_ON %u (LED%u)", led, led + 2);
			fsled_expect_regs(test, &got, &want, when);
		}
		ret = ioctl_call(ctx->filp, FSLED_OFF, led);
		KUNIT_EXPECT_EQ_MSG(test, ret, 0L, "FSLED_OFF %u", led);
		fsled_regs_read(ctx->hw, &got);
		snprintf(when, sizeof(when), "after FSLED_OFF %u (LED%u)", led, led + 2);
		fsled_expect_regs(test, &got, &base, when);
	}
}

static void fsled_bad_led_returns_einval(struct kunit *test)
{
	static const unsigned long bad[] = { FSLED_NR_LEDS, FSLED_NR_LEDS + 1, 100,
					     0x100000000UL, ULONG_MAX };
	struct ioctl_ctx *ctx = test->priv;
	struct fsled_regs before, after;
	unsigned int i;

	fsled_regs_read(ctx->hw, &before);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		long on = ioctl_call(ctx->filp, FSLED_ON, bad[i]);
		long off = ioctl_call(ctx->filp, FSLED_OFF, bad[i]);

		KUNIT_EXPECT_EQ_MSG(test, on, -EINVAL, "FSLED_ON with LED argument %lu", bad[i]);
		KUNIT_EXPECT_EQ_MSG(test, off, -EINVAL, "FSLED_OFF with LED argument %lu", bad[i]);
	}
	fsled_regs_read(ctx->hw, &after);
	fsled_expect_regs(test, &after, &before, "after bad LED numbers");
}

static void fsled_unknown_command_returns_enotty(struct kunit *test)
{
	static const unsigned int unknown[] = {
		_IOW(FSLED_IOC_MAGIC, 2, unsigned int),
		_IOR(FSLED_IOC_MAGIC, 0, unsigned int),		/* ON, read not write */
		_IOW(FSLED_IOC_MAGIC, 1, unsigned long),	/* OFF, another size */
		_IO('v', 0),
		0,
	};
	/* The command decides what the argument means: first the command. */
	static const unsigned long args[] = { FSLED_LED2, FSLED_NR_LEDS, ~0UL };
	struct ioctl_ctx *ctx = test->priv;
	struct fsled_regs before, after;
	unsigned int i, a;

	fsled_regs_read(ctx->hw, &before);
	for (i = 0; i < ARRAY_SIZE(unknown); i++) {
		for (a = 0; a < ARRAY_SIZE(args); a++) {
			long ret = ioctl_call(ctx->filp, unknown[i], args[a]);

			KUNIT_EXPECT_EQ_MSG(test, ret, -ENOTTY, "ioctl command %#x, argument %lu",
					    unknown[i], args[a]);
		}
	}
	fsled_regs_read(ctx->hw, &after);
	fsled_expect_regs(test, &after, &before, "after unknown commands");
}

static void fsled_second_open_returns_ebusy(struct kunit *test)
{
	struct ioctl_ctx *ctx = test->priv;
	struct file *second = ioctl_open();

	KUNIT_EXPECT_EQ_MSG(test, PTR_ERR_OR_ZERO(second), -EBUSY,
			    "a second open while the first is open");
	if (!IS_ERR(second))
		kdkit_close(second);

	/* Once the first is closed, the device opens again, every time. */
	kdkit_close(ctx->filp);
	ctx->filp = ioctl_open();
	KUNIT_ASSERT_FALSE_MSG(test, IS_ERR(ctx->filp),
			       "open after the only opener closed: %ld", PTR_ERR(ctx->filp));
	kdkit_close(ctx->filp);
	ctx->filp = ioctl_open();
	KUNIT_EXPECT_FALSE_MSG(test, IS_ERR(ctx->filp),
			       "open after a second close: %ld", PTR_ERR(ctx->filp));
}

static void fsled_release_turns_every_led_off(struct kunit *test)
{
	struct ioctl_ctx *ctx = test->priv;
	struct fsled_regs base, got;
	unsigned int led;

	ioctl_seed_other_pins(ctx->hw, &base);
	for (led = 0; led < FSLED_NR_LEDS; led++) {
		long ret = ioctl_call(ctx->filp, FSLED_ON, led);

		KUNIT_EXPECT_EQ_MSG(test, ret, 0L, "FSLED_ON %u", led);
	}
	kdkit_close(ctx->filp);
	ctx->filp = NULL;
	fsled_regs_read(ctx->hw, &got);
	fsled_expect_regs(test, &got, &base, "after the last close");
}

/*
 * Two threads share one open file and switch on LED4 and LED5: two pins
 * of one DAT register. One is stopped at each instruction of the ioctl
 * (and of the driver's functions it calls) in turn while the other runs
 * (kdkit_interleave()): a read-modify-write without the lock loses the
 * other's update in the round that stops between its read and its write.
 */
struct ioctl_race {
	struct file *filp;
	struct fsled_hw *hw;
	long err[2];
};

static void ioctl_race_first(void *data)
{
	struct ioctl_race *race = data;

	race->err[0] = ioctl_call(race->filp, FSLED_ON, FSLED_LED4);
}

static void ioctl_race_second(void *data)
{
	struct ioctl_race *race = data;

	race->err[1] = ioctl_call(race->filp, FSLED_ON, FSLED_LED5);
}

static bool ioctl_race_check(struct kunit *test, void *data, const void *stopped_at)
{
	struct ioctl_race *race = data;
	bool ok = true;
	unsigned int i;

	for (i = 0; i < 2; i++) {
		unsigned int led = FSLED_LED4 + i;

		if (race->err[i]) {
			KUNIT_FAIL(test, "FSLED_ON LED%u returned %ld", led + 2, race->err[i]);
			ok = false;
		} else if (!fsled_led_is_on(race->hw, led)) {
			KUNIT_FAIL(test,
				   "LED%u is off just after FSLED_ON, which ran while the other thread's ioctl was stopped at %pS: its update was lost (the read-modify-write needs the lock)",
				   led + 2, stopped_at);
			ok = false;
		}
		if (ioctl_call(race->filp, FSLED_OFF, led) || fsled_led_is_on(race->hw, led)) {
			KUNIT_FAIL(test, "LED%u: FSLED_OFF failed after the race", led + 2);
			ok = false;
		}
	}
	return ok;
}

static void fsled_two_threads_on_one_fd_stay_consistent(struct kunit *test)
{
	struct ioctl_ctx *ctx = test->priv;
	struct ioctl_race race = { .filp = ctx->filp, .hw = ctx->hw };
	struct kdkit_interleave il = {
		.fn = ctx->filp->f_op->unlocked_ioctl,
		.first = ioctl_race_first,
		.second = ioctl_race_second,
		.check = ioctl_race_check,
		.data = &race,
	};

	KUNIT_ASSERT_NOT_NULL_MSG(test, il.fn, "fsled has no unlocked_ioctl");
	kdkit_interleave(test, &il);
}

/*
 * Two opens at once: one stopped at each instruction of open in turn
 * while the other runs. Only one may get the device: a check that it is
 * free and the taking of it must be one atomic step.
 */
struct open_race {
	struct file *got[2];
};

static void open_race_first(void *data)
{
	((struct open_race *)data)->got[0] = ioctl_open();
}

static void open_race_second(void *data)
{
	((struct open_race *)data)->got[1] = ioctl_open();
}

static bool open_race_check(struct kunit *test, void *data, const void *stopped_at)
{
	struct open_race *race = data;
	bool both = !IS_ERR(race->got[0]) && !IS_ERR(race->got[1]);
	unsigned int i;

	if (both)
		KUNIT_FAIL(test,
			   "two opens at once both got the device, one stopped at %pS: testing that it is free and taking it must be one atomic step",
			   stopped_at);
	for (i = 0; i < 2; i++)
		if (!IS_ERR_OR_NULL(race->got[i]))
			kdkit_close(race->got[i]);
	return !both;
}

static void fsled_two_opens_at_once_get_one_device(struct kunit *test)
{
	struct ioctl_ctx *ctx = test->priv;
	struct open_race race = {};
	struct kdkit_interleave il = {
		.fn = ctx->filp->f_op->open,
		.first = open_race_first,
		.second = open_race_second,
		.check = open_race_check,
		.data = &race,
	};

	KUNIT_ASSERT_NOT_NULL_MSG(test, il.fn, "fsled has no open()");
	kdkit_close(ctx->filp);
	ctx->filp = NULL;
	kdkit_interleave(test, &il);
}

/*
 * A last close while another process opens: one stopped at each
 * instruction of release in turn while the other opens and switches LED3
 * on. Release must switch the LEDs off before it lets the next opener in,
 * or it switches off the new opener's LED.
 */
struct release_race {
	struct file *closing, *opened;
	long on;
};

static void release_race_first(void *data)
{
	struct release_race *race = data;

	/* The last reference: release() runs here, in this thread. */
	__fput_sync(race->closing);
	race->closing = NULL;
}

static void release_race_second(void *data)
{
	struct release_race *race = data;

	race->opened = ioctl_open();
	race->on = IS_ERR(race->opened) ? PTR_ERR(race->opened) :
					  ioctl_call(race->opened, FSLED_ON, FSLED_LED3);
}

static bool release_race_check(struct kunit *test, void *data, const void *stopped_at)
{
	struct ioctl_ctx *ctx = test->priv;
	struct release_race *race = data;
	bool ok = true;

	if (!IS_ERR(race->opened) && !race->on && !fsled_led_is_on(ctx->hw, FSLED_LED3)) {
		KUNIT_FAIL(test,
			   "a new opener's LED3 went off: the last release, stopped at %pS, let the next opener in before switching the LEDs off",
			   stopped_at);
		ok = false;
	}
	if (!IS_ERR(race->opened))
		kdkit_close(race->opened);
	/* The next round's closing file, with an LED on. */
	race->closing = ioctl_open();
	if (IS_ERR(race->closing)) {
		KUNIT_FAIL(test, "open after the race: %ld", PTR_ERR(race->closing));
		race->closing = NULL;
		return false;
	}
	return ok && !ioctl_call(race->closing, FSLED_ON, FSLED_LED2);
}

static void fsled_release_lets_the_next_opener_in_last(struct kunit *test)
{
	struct ioctl_ctx *ctx = test->priv;
	struct release_race race = { .closing = ctx->filp };
	struct kdkit_interleave il = {
		.fn = ctx->filp->f_op->release,
		.first = release_race_first,
		.second = release_race_second,
		.check = release_race_check,
		.data = &race,
	};

	KUNIT_ASSERT_NOT_NULL_MSG(test, il.fn, "fsled has no release()");
	KUNIT_ASSERT_EQ(test, ioctl_call(ctx->filp, FSLED_ON, FSLED_LED2), 0L);
	ctx->filp = NULL;
	kdkit_interleave(test, &il);
	if (race.closing)
		kdkit_close(race.closing);
}

/*
 * file_operations.owner = THIS_MODULE: the kernel holds the module while
 * /dev/fsled is open, so that it cannot be unloaded under an open file.
 */
static void fsled_open_file_holds_the_module(struct kunit *test)
{
	struct ioctl_ctx *ctx = test->priv;

	KUNIT_EXPECT_PTR_EQ_MSG(test, ctx->filp->f_op->owner, kdkit_driver_module(),
				"fsled's file_operations have no .owner = THIS_MODULE");
}

/* Load the driver again, so that its probe's ioremap()s can be watched. */
static int width_reload(struct kunit *test)
{
	struct ioctl_ctx *ctx = test->priv;

	kdkit_close(ctx->filp);
	ctx->filp = NULL;
	kdkit_driver_exit();
	ctx->loaded = false;
	if (kdkit_driver_init())
		return -ENODEV;
	ctx->loaded = true;
	ctx->filp = ioctl_open();
	return PTR_ERR_OR_ZERO(ctx->filp);
}

static void width_switch_bank(struct kunit *test, unsigned int bank)
{
	struct ioctl_ctx *ctx = test->priv;
	unsigned int led;

	for (led = 0; led < FSLED_NR_LEDS; led++) {
		if (fsled_pins[led].bank != bank)
			continue;
		KDKIT_EXPECT_IOCTL(test, ctx->filp, FSLED_ON, led, 0);
		KDKIT_EXPECT_IOCTL(test, ctx->filp, FSLED_OFF, led, 0);
	}
}

/* Every access to a DAT register is 32 bits wide, as the GPIO block needs. */
static void fsled_registers_are_accessed_32_bits_wide(struct kunit *test)
{
	struct ioctl_ctx *ctx = test->priv;
	unsigned int bank;

	KUNIT_ASSERT_EQ_MSG(test, fsled_width_find_mappings(test, ctx->hw, width_reload), 0,
			    "the driver did not load and open again");
	for (bank = 0; bank < FSLED_NR_BANKS; bank++)
		fsled_width_watch(test, bank, width_switch_bank);
}

static struct kunit_case fsled_ioctl_cases[] = {
	KUNIT_CASE(fsled_on_and_off_change_one_bit),
	KUNIT_CASE(fsled_bad_led_returns_einval),
	KUNIT_CASE(fsled_unknown_command_returns_enotty),
	KUNIT_CASE(fsled_second_open_returns_ebusy),
	KUNIT_CASE(fsled_release_turns_every_led_off),
	KUNIT_CASE(fsled_open_file_holds_the_module),
	KUNIT_CASE(fsled_registers_are_accessed_32_bits_wide),
	KUNIT_CASE(fsled_two_threads_on_one_fd_stay_consistent),
	KUNIT_CASE(fsled_two_opens_at_once_get_one_device),
	KUNIT_CASE(fsled_release_lets_the_next_opener_in_last),
	{}
};

static struct kunit_suite fsled_ioctl_suite = {
	.name = "fsled_ioctl",
	.init = ioctl_test_init,
	.exit = ioctl_test_exit,
	.test_cases = fsled_ioctl_cases,
};

kunit_test_suite(fsled_ioctl_suite);

MODULE_LICENSE("GPL");
