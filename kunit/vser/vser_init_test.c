// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit cases for vser's module init and exit, error paths included: every
 * allocation init makes is failed in turn (the kit's fault-injection sweep),
 * and a taken chrdev region is refused. The driver is reached only through
 * its init and exit and its device nodes, so any correct vser passes.
 */
#include <linux/fs.h>
#include <linux/kdev_t.h>
#include <kunit/test.h>
#include "kdkit.h"
#include "vser_ioctl.h"

/* After a failed init, no /dev/vserN node may be left behind. */
static void vser_expect_no_nodes(struct kunit *test)
{
	char name[32];
	int minor;

	for (minor = 0; minor < VSER_DEFAULT_NDEVS; minor++) {
		snprintf(name, sizeof(name), VSER_DEV_PREFIX "%d", minor);
		KUNIT_EXPECT_FALSE_MSG(test, kdkit_path_exists(name),
				       "%s still exists after a failed init", name);
	}
}

static void vser_init_creates_every_node(struct kunit *test)
{
	char name[32];
	int minor;

	KUNIT_ASSERT_EQ(test, kdkit_driver_init(), 0);
	for (minor = 0; minor < VSER_DEFAULT_NDEVS; minor++) {
		snprintf(name, sizeof(name), VSER_DEV_PREFIX "%d", minor);
		KUNIT_EXPECT_TRUE_MSG(test, kdkit_path_exists(name), "%s is missing", name);
	}
	kdkit_driver_exit();
	vser_expect_no_nodes(test);
}

static void vser_init_unwinds_every_failed_allocation(struct kunit *test)
{
	int points = kdkit_sweep_init(test, vser_expect_no_nodes);

	/* A region, a class, and per port: state, FIFO, cdev, device. */
	KUNIT_EXPECT_GE(test, points, 2 + 4 * VSER_DEFAULT_NDEVS);
}

/*
 * Take every major that alloc_chrdev_region() could hand out, and the
 * fixed majors a driver might ask for, so that init finds none free.
 */
static void vser_init_with_taken_region_returns_ebusy(struct kunit *test)
{
	static dev_t taken[512];
	unsigned int n = 0, major, i;
	int ret;

	KUNIT_ASSERT_EQ(test, kdkit_leak_begin(), 0);
	for (major = 1; major < ARRAY_SIZE(taken) && major < CHRDEV_MAJOR_MAX; major++)
		if (!register_chrdev_region(MKDEV(major, 0), VSER_DEFAULT_NDEVS, "kdkit-taken"))
			taken[n++] = MKDEV(major, 0);

	ret = kdkit_driver_init();
	if (!ret)
		kdkit_driver_exit();
	for (i = 0; i < n; i++)
		unregister_chrdev_region(taken[i], VSER_DEFAULT_NDEVS);
	KUNIT_EXPECT_EQ_MSG(test, ret, -EBUSY, "init with no free chrdev region returned %d", ret);
	KUNIT_EXPECT_EQ_MSG(test, kdkit_leak_end(NULL, 0), 0,
			    "init with no free region left allocations behind");
	vser_expect_no_nodes(test);

	/* A clean load and unload still work afterwards. */
	KUNIT_ASSERT_EQ(test, kdkit_driver_init(), 0);
	kdkit_driver_exit();
}

static struct kunit_case vser_init_cases[] = {
	KUNIT_CASE(vser_init_creates_every_node),
	KUNIT_CASE(vser_init_unwinds_every_failed_allocation),
	KUNIT_CASE(vser_init_with_taken_region_returns_ebusy),
	{}
};

static struct kunit_suite vser_init_suite = {
	.name = "vser_init",
	.test_cases = vser_init_cases,
};

kunit_test_suite(vser_init_suite);

MODULE_LICENSE("GPL");
