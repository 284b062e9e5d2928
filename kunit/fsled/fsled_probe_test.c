// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit cases for fsled's probe and remove, error paths included. The
 * driver is reached as the kernel reaches it: its module init registers it
 * and binds the board's device, and the tests unbind and bind that device
 * again, which runs remove() and probe() in the test's own task, where
 * fault injection (fail-nth) applies. Any driver that binds the "fsled"
 * platform device passes, whatever its internals.
 */
#include <linux/kprobes.h>
#include <linux/random.h>
#include <kunit/test.h>
#include "fsled_board_test.h"

struct probe_ctx {
	struct fsled_hw *hw;
	struct device_driver *drv;	/* the driver under test, once bound */
	int mappings;			/* bank mappings before the driver's */
	bool loaded;
};

static int probe_test_init(struct kunit *test)
{
	struct probe_ctx *ctx = kunit_kzalloc(test, sizeof(*ctx), GFP_KERNEL);

	if (!ctx)
		return -ENOMEM;
	test->priv = ctx;
	ctx->hw = fsled_hw_get(test);
	return 0;
}

static void probe_test_exit(struct kunit *test)
{
	struct probe_ctx *ctx = test->priv;

	if (ctx->loaded)
		kdkit_driver_exit();
	fsled_hw_put(ctx->hw);
}

/* Load the module: its init must bind the board's device. */
static void probe_load(struct kunit *test)
{
	struct probe_ctx *ctx = test->priv;

	ctx->drv = kdkit_driver_init_bound(test, &ctx->hw->pdev->dev, &ctx->loaded);
}

/* Load, then unbind: the driver is registered and the device is free. */
static void probe_load_unbound(struct kunit *test)
{
	struct probe_ctx *ctx = test->priv;

	probe_load(test);
	device_release_driver(&ctx->hw->pdev->dev);
	ctx->mappings = fsled_count_mappings(test, ctx->hw);
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

/* Nothing of a failed probe, or of a remove, may remain. */
static void probe_expect_nothing_left(struct kunit *test, const char *when)
{
	struct probe_ctx *ctx = test->priv;

	KUNIT_EXPECT_FALSE_MSG(test, kdkit_driver_bound(&ctx->hw->pdev->dev),
			       "%s: the device is still bound", when);
	KUNIT_EXPECT_EQ_MSG(test, fsled_count_mappings(test, ctx->hw), ctx->mappings,
			    "%s: a bank is still ioremapped (see /proc/vmallocinfo)", when);
	fsled_expect_banks_free(test, ctx->hw, when);
	fsled_expect_no_node(test, when);
}

static void probe_check_failure(struct kunit *test)
{
	probe_expect_nothing_left(test, "after a failed probe");
}

/* What probe leaves from @before: the LED pins outputs, their LEDs off. */
static void probe_expected(const struct fsled_regs *before, struct fsled_regs *want)
{
	unsigned int i;

	*want = *before;
	for (i = 0; i < FSLED_NR_LEDS; i++) {
		unsigned int b = fsled_pins[i].bank, pin = fsled_pins[i].pin;

		want->con[b] = (want->con[b] & ~(0xfU << (pin * 4))) | (0x1U << (pin * 4));
		want->dat[b] &= ~BIT(pin);
	}
}

/* Every LED on, as a user may have left them. */
static void probe_light_all(struct fsled_hw *hw)
{
	struct fsled_regs lit;
	unsigned int i;

	fsled_regs_read(hw, &lit);
	for (i = 0; i < FSLED_NR_LEDS; i++)
		lit.dat[fsled_pins[i].bank] |= BIT(fsled_pins[i].pin);
	fsled_regs_write(hw, &lit);
}

static void fsled_probe_sets_only_the_led_pins(struct kunit *test)
{
	struct probe_ctx *ctx = test->priv;
	struct fsled_regs before, after, want;
	unsigned int round, i;
	char when[48];

	probe_load_unbound(test);
	/* Other pins' bits at random, and both extremes, must all survive. */
	for (round = 0; round < 6; round++) {
		for (i = 0; i < FSLED_NR_BANKS; i++) {
			before.con[i] = round == 0 ? 0 : round == 1 ? ~0U : get_random_u32();
			before.dat[i] = round == 0 ? 0 : round == 1 ? ~0U : get_random_u32();
		}
		fsled_regs_write(ctx->hw, &before);
		kdkit_assert_probed(test, probe_bind(test), "on the unbound device");

		probe_expected(&before, &want);
		fsled_regs_read(ctx->hw, &after);
		snprintf(when, sizeof(when), "after probe (seed %u)", round);
		fsled_expect_regs(test, &after, &want, when);
		probe_unbind(test);
	}
}

static void fsled_probe_unwinds_every_failure(struct kunit *test)
{
	const struct kdkit_sweep_ops ops = {
		.what = "probe",
		.up = probe_bind,
		.down = probe_unbind,
		.check = probe_check_failure,
		.any_error = true,
		.least = 1 + 2 * FSLED_NR_BANKS + 1,
		.least_why = "allocates its state, claims and maps each of the "
			     __stringify(FSLED_NR_BANKS) " banks and registers " FSLED_DEV,
	};

	probe_load_unbound(test);
	kdkit_sweep(test, &ops);
}

static void fsled_probe_of_a_claimed_bank_returns_ebusy(struct kunit *test)
{
	struct probe_ctx *ctx = test->priv;
	struct fsled_hw *hw = ctx->hw;
	unsigned int i;
	char when[48];
	int ret;

	probe_load_unbound(test);
	for (i = 0; i < FSLED_NR_BANKS; i++) {
		struct resource *r = request_mem_region(hw->res[i]->start,
							resource_size(hw->res[i]), "kdkit-taken");

		KUNIT_ASSERT_NOT_NULL(test, r);
		KUNIT_ASSERT_EQ(test, kdkit_leak_begin(), 0);
		ret = probe_bind(test);
		if (!ret)
			probe_unbind(test);
		snprintf(when, sizeof(when), "after probe with %s taken", fsled_bank_names[i]);
		kdkit_leak_expect_none(test, when);
		release_mem_region(hw->res[i]->start, resource_size(hw->res[i]));
		KUNIT_EXPECT_EQ_MSG(test, ret, -EBUSY,
				    "probe with bank %s claimed by another driver returned %d",
				    fsled_bank_names[i], ret);
		probe_expect_nothing_left(test, when);
	}
	/* With every bank free again, it binds. */
	kdkit_assert_probed(test, probe_bind(test), "with every bank free again");
}

static void fsled_remove_leaves_leds_off_and_releases_all(struct kunit *test)
{
	struct probe_ctx *ctx = test->priv;
	unsigned int i;

	probe_load_unbound(test);
	KUNIT_ASSERT_EQ(test, kdkit_leak_begin(), 0);
	kdkit_assert_probed(test, probe_bind(test), "on the unbound device");
	probe_light_all(ctx->hw);
	probe_unbind(test);
	kdkit_leak_expect_none(test, "probe, then remove");

	for (i = 0; i < FSLED_NR_LEDS; i++)
		KUNIT_EXPECT_FALSE_MSG(test, fsled_led_is_on(ctx->hw, i),
				       "LED%u is still on after remove", i + 2);
	probe_expect_nothing_left(test, "after remove");
}

static void fsled_module_load_and_unload_leave_nothing(struct kunit *test)
{
	struct probe_ctx *ctx = test->priv;

	ctx->mappings = fsled_count_mappings(test, ctx->hw);
	KUNIT_ASSERT_EQ(test, kdkit_leak_begin(), 0);
	probe_load(test);
	kdkit_driver_exit();
	ctx->loaded = false;
	kdkit_expect_exit_left_nothing(test);
	kdkit_leak_expect_none(test, "module load, then unload");
	probe_expect_nothing_left(test, "after unload");
}

/* Each bank is claimed whole: one busy region, exactly the bank's. */
static void fsled_probe_claims_exactly_each_bank(struct kunit *test)
{
	struct probe_ctx *ctx = test->priv;
	struct resource *bank, *claim;
	unsigned int i;

	probe_load(test);
	for (i = 0; i < FSLED_NR_BANKS; i++) {
		bank = ctx->hw->res[i];
		for (claim = bank->child; claim; claim = claim->sibling)
			if (claim->flags & IORESOURCE_BUSY)
				break;
		KUNIT_EXPECT_NOT_NULL_MSG(test, claim, "bank %s %pR was mapped but not claimed",
					  fsled_bank_names[i], bank);
		if (claim)
			KUNIT_EXPECT_TRUE_MSG(test, claim->start == bank->start &&
					      claim->end == bank->end,
					      "bank %s is %pR, but the claim is %pR",
					      fsled_bank_names[i], bank, claim);
	}
}

/*
 * What the registers held when the driver's device node first went
 * through one probed function (device_add, device_del) in the case's task,
 * where probe and remove run.
 */
struct node_watch {
	struct kprobe kp;
	struct task_struct *task;
	struct fsled_hw *hw;
	bool seen;
	struct fsled_regs regs;
};

static int node_watch_pre(struct kprobe *p, struct pt_regs *regs)
{
	struct node_watch *w = container_of(p, struct node_watch, kp);
	struct device *dev = (struct device *)regs_get_kernel_argument(regs, 0);

	if (current == w->task && dev->devt && !w->seen) {
		fsled_regs_read(w->hw, &w->regs);
		w->seen = true;
	}
	return 0;
}

/*
 * Users reach the hardware through /dev/fsled: it may appear only once
 * probe has set the pins up, and must be gone before remove switches the
 * LEDs off, or a user could switch one on again in between.
 */
static void fsled_node_appears_last_and_goes_first(struct kunit *test)
{
	struct probe_ctx *ctx = test->priv;
	struct node_watch add = {
		.kp = { .symbol_name = "device_add", .pre_handler = node_watch_pre },
		.task = current, .hw = ctx->hw,
	}, del = {
		.kp = { .symbol_name = "device_del", .pre_handler = node_watch_pre },
		.task = current, .hw = ctx->hw,
	};
	struct fsled_regs before, want;
	unsigned int i;
	int ret;

	probe_load_unbound(test);
	for (i = 0; i < FSLED_NR_BANKS; i++) {
		before.con[i] = get_random_u32();
		before.dat[i] = get_random_u32();
	}
	fsled_regs_write(ctx->hw, &before);
	probe_expected(&before, &want);
	KUNIT_ASSERT_EQ(test, register_kprobe(&add.kp), 0);
	ret = register_kprobe(&del.kp);
	if (ret)
		unregister_kprobe(&add.kp);
	KUNIT_ASSERT_EQ(test, ret, 0);
	ret = probe_bind(test);
	if (!ret) {
		probe_light_all(ctx->hw);
		probe_unbind(test);
	}
	unregister_kprobe(&del.kp);
	unregister_kprobe(&add.kp);
	kdkit_assert_probed(test, ret, "on the unbound device");
	KUNIT_ASSERT_TRUE_MSG(test, add.seen, "probe made no device node");
	fsled_expect_regs(test, &add.regs, &want, "when " FSLED_DEV " appeared");
	KUNIT_ASSERT_TRUE_MSG(test, del.seen, "remove left the device node");
	/* Off before the node went: a user could switch it on again in between. */
	for (i = 0; i < FSLED_NR_LEDS; i++)
		KUNIT_EXPECT_TRUE_MSG(test, del.regs.dat[fsled_pins[i].bank] &
				      BIT(fsled_pins[i].pin),
				      "LED%u was off before " FSLED_DEV " was removed", i + 2);
}

/*
 * No LED may light while probe runs: a pin made an output while its DAT
 * bit still says on lights its LED until probe switches it off. One
 * thread binds the driver, stopped at each instruction of probe (and of
 * the driver's functions it calls) in turn, while another reads the pins.
 */
struct flash_watch {
	struct kunit *test;
	int ret;
	int lit;		/* an LED the reader saw lit, or -1 */
};

/* The pins inputs, as at reset, their DAT bits on; the rest at random. */
static void flash_seed(struct fsled_hw *hw)
{
	struct fsled_regs r;
	unsigned int i;

	for (i = 0; i < FSLED_NR_BANKS; i++) {
		r.con[i] = get_random_u32();
		r.dat[i] = get_random_u32();
	}
	for (i = 0; i < FSLED_NR_LEDS; i++) {
		r.con[fsled_pins[i].bank] &= ~(0xfU << (fsled_pins[i].pin * 4));
		r.dat[fsled_pins[i].bank] |= BIT(fsled_pins[i].pin);
	}
	fsled_regs_write(hw, &r);
}

static void flash_bind(void *data)
{
	struct flash_watch *w = data;

	w->ret = probe_bind(w->test);
}

static void flash_look(void *data)
{
	struct flash_watch *w = data;
	struct probe_ctx *ctx = w->test->priv;
	struct fsled_regs r;
	unsigned int i;

	fsled_regs_read(ctx->hw, &r);
	for (i = 0; i < FSLED_NR_LEDS; i++) {
		unsigned int bank = fsled_pins[i].bank, pin = fsled_pins[i].pin;

		if (((r.con[bank] >> (pin * 4)) & 0xf) == 1 && (r.dat[bank] & BIT(pin)))
			w->lit = i;
	}
}

static bool flash_check(struct kunit *test, void *data, const void *stopped_at)
{
	struct probe_ctx *ctx = test->priv;
	struct flash_watch *w = data;
	bool ok = !w->ret;

	if (w->ret)
		KUNIT_FAIL(test, "probe failed: %d", w->ret);
	else
		probe_unbind(test);
	if (w->lit >= 0 && stopped_at) {
		KUNIT_FAIL(test,
			   "LED%d lit while probe was stopped at %pS: switch the LEDs off before making their pins outputs",
			   w->lit + 2, stopped_at);
		ok = false;
	}
	flash_seed(ctx->hw);
	w->lit = -1;
	return ok;
}

static void fsled_probe_never_lights_an_led(struct kunit *test)
{
	struct probe_ctx *ctx = test->priv;
	struct flash_watch w = { .test = test, .lit = -1 };
	struct kdkit_interleave il = {
		.first = flash_bind,
		.second = flash_look,
		.check = flash_check,
		.data = &w,
	};

	probe_load_unbound(test);
	il.fn = to_platform_driver(ctx->drv)->probe;
	flash_seed(ctx->hw);
	kdkit_interleave(test, &il);
}

static struct kunit_case fsled_probe_cases[] = {
	KUNIT_CASE(fsled_probe_sets_only_the_led_pins),
	KUNIT_CASE(fsled_probe_never_lights_an_led),
	KUNIT_CASE(fsled_probe_unwinds_every_failure),
	KUNIT_CASE(fsled_probe_of_a_claimed_bank_returns_ebusy),
	KUNIT_CASE(fsled_remove_leaves_leds_off_and_releases_all),
	KUNIT_CASE(fsled_module_load_and_unload_leave_nothing),
	KUNIT_CASE(fsled_probe_claims_exactly_each_bank),
	KUNIT_CASE(fsled_node_appears_last_and_goes_first),
	{}
};

static struct kunit_suite fsled_probe_suite = {
	.name = "fsled_probe",
	.init = probe_test_init,
	.exit = probe_test_exit,
	.test_cases = fsled_probe_cases,
};

kunit_test_suite(fsled_probe_suite);

MODULE_LICENSE("GPL");
