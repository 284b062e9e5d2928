// SPDX-License-Identifier: GPL-2.0
/* KUnit cases for the hello module's entry points, run as insmod would. */
#include <kunit/test.h>
#include "kdkit.h"

static void hello_module_init_then_exit_succeeds(struct kunit *test)
{
	KUNIT_ASSERT_EQ(test, kdkit_driver_init(), 0);
	kdkit_driver_exit();
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
