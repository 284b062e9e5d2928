// SPDX-License-Identifier: GPL-2.0
/* KUnit cases for the hello module's entry points, run as insmod would. */
#include <linux/module.h>
#include <kunit/test.h>
#include "kdkit.h"

static void hello_module_init_then_exit_succeeds(struct kunit *test)
{
	struct module *mod = kdkit_driver_module();
	int refs = module_refcount(mod);

	KUNIT_ASSERT_EQ(test, kdkit_driver_init(), 0);
	kdkit_driver_exit();
	/* A module that keeps a reference to itself can never be unloaded. */
	KUNIT_EXPECT_EQ_MSG(test, module_refcount(mod), refs,
			    "init and exit left the module's reference count changed");
}

static void hello_module_loads_twice(struct kunit *test)
{
	/* A second load after an unload finds nothing left over. */
	KUNIT_ASSERT_EQ(test, kdkit_driver_init(), 0);
	kdkit_driver_exit();
	KUNIT_ASSERT_EQ(test, kdkit_driver_init(), 0);
	kdkit_driver_exit();
}

static struct kunit_case hello_module_cases[] = {
	KUNIT_CASE(hello_module_init_then_exit_succeeds),
	KUNIT_CASE(hello_module_loads_twice),
	{}
};

static struct kunit_suite hello_module_suite = {
	.name = "hello_module",
	.test_cases = hello_module_cases,
};

kunit_test_suite(hello_module_suite);

MODULE_LICENSE("GPL");
